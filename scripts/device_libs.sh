# Sourced by scripts/gpu_env.sh and scripts/gpu_build.sh: puts the image's library folders -- the Python LibTorch's
# torch/lib, the pip CUDA, cuDNN and NCCL wheels' nvidia/*/lib, the CUDA toolkit's and OpenMPI's -- on
# LD_LIBRARY_PATH (once), so that binaries built on the development machine (scripts/prebuild.sh), whose run paths
# name that machine's folders, load this machine's libraries. A binary built here finds the same ones either way.
if [ -z "${GSA_DEVICE_LIBS:-}" ]; then
  GSA_DEVICE_LIBS=$(python3 - <<'PY' 2>/dev/null
import glob, importlib.util, os
spec = importlib.util.find_spec("torch")  # without importing it (seconds)
site = os.path.dirname(spec.submodule_search_locations[0]) if spec else ""
dirs = [os.path.join(site, "torch", "lib")] if site else []
dirs += sorted(glob.glob(os.path.join(site, "nvidia", "*", "lib"))) if site else []
dirs += ["/usr/local/cuda/lib64", "/usr/local/cuda/lib", "/usr/lib/x86_64-linux-gnu/openmpi/lib"]
print(":".join(d for d in dirs if os.path.isdir(d)))
PY
  )
  export GSA_DEVICE_LIBS
  [ -n "$GSA_DEVICE_LIBS" ] && export LD_LIBRARY_PATH=$GSA_DEVICE_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
