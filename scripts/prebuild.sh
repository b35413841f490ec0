#!/usr/bin/env bash
# scripts/prebuild.sh [--targets "TARGET..."] VARIANT...: builds here, for the device machine, the binaries its
# scripts would otherwise build there (~220 s of a fresh H200's 600 s call, ~40 s for each patch an A/B applies), and
# packs each VARIANT's as prebuilt/KEY.tar.xz, KEY = scripts/source_key.sh of the tree the binaries were built from.
# A VARIANT is `tree` (the working tree as it is) or a PATCH file (applied to the tree, built, packed, reverted:
# a bundle for each state gpu_decode_patch_ab.sh / gpu_patch_ab.sh build there). On the device scripts/gpu_build.sh
# unpacks the bundle whose key matches the tree it runs in, checks that the binaries load against the image's
# libraries, and builds from source when there is none or they do not (see it). Carry `prebuilt` in the call.
#
# Needs a build here configured with the CUDA kernels (nvcc: the sm_90a code the device runs); the host code links
# against this machine's LibTorch (the pip torch the image carries, same version) and Debian's OpenMPI and protobuf,
# whose sonames the device image must have (gpu_build.sh checks). Default targets: `gsa` and the test binaries of
# gpu_kernels_check.sh's tests part (a superset of gpu_decode_patch_ab.sh's). Binaries are stripped; one bundle is
# ~8 MB for 9 binaries (xz with a window that spans them: they share the kernels' code).
# An A/B compares like with like only when every variant comes from the same compiler: prebuild the tree and every
# PATCH of the call, or none (each build's line in the call's output says "prebuilt KEY" or the seconds it built).
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(gsa test_sparse_attention_gpu test_lse_merge_gpu test_sparse_attention test_attention test_sparse_decode
  test_decode_plan test_model test_attention_mode test_gist_layout test_op_profile test_selected_attention
  test_key_gather test_chunked_loss test_skinny_gemm test_skinny_rope_linear test_decode_step_ops test_serving_engine)
if [ "${1:-}" = --targets ]; then
  read -r -a targets <<<"$2"
  shift 2
fi
[ $# -gt 0 ] || { echo "usage: $0 [--targets \"TARGET...\"] tree|PATCH..." >&2; exit 2; }
grep -q "gsa: CUDA kernels ON" build/configure.log 2>/dev/null \
  || { echo "$0: build/ is not configured with the CUDA kernels (scripts/build.sh with nvcc on the PATH)" >&2; exit 1; }
for v in "$@"; do
  [ "$v" = tree ] || git apply --check "$v" || { echo "$0: $v does not apply to the tree" >&2; exit 1; }
done
mkdir -p prebuilt
applied=""
trap '[ -n "$applied" ] && git apply -R "$applied"' EXIT
for v in "$@"; do
  if [ "$v" != tree ]; then
    git apply "$v"
    applied=$v
  fi
  start=$(date +%s)
  GSA_JOBS=${GSA_JOBS:-2} scripts/build.sh --target "${targets[@]}" >build/prebuild.log 2>&1 \
    || { tail -40 build/prebuild.log; exit 1; }
  key=$(scripts/source_key.sh)
  stage=$(mktemp -d)
  for t in "${targets[@]}"; do
    path=build/tests/$t
    [ "$t" = gsa ] && path=build/launcher/gsa
    [ -x "$path" ] || { echo "$0: no binary $path for target $t" >&2; exit 1; }
    mkdir -p "$stage/$(dirname "$path")"
    strip -o "$stage/$path" "$path"
    echo "$path" >>"$stage/build/prebuilt_files.txt"
  done
  { echo "key $key"; echo "variant $v"; echo "nvcc $(nvcc --version | tail -1)"; echo "built $(date -u +%FT%TZ)"; } \
    >"$stage/build/prebuilt_info.txt"
  # One xz stream with a 256 MiB window: the binaries share the kernels' code, so each after the first packs small.
  # Written under a temporary name and renamed when whole: a device call started while xz still wrote carried a
  # truncated bundle under the final name (thirty-fifth session, call 1: the device built from source instead).
  tar -C "$stage" -cf - build | xz -6 --lzma2=preset=6,dict=256MiB -T1 >"prebuilt/$key.tar.xz.partial"
  mv "prebuilt/$key.tar.xz.partial" "prebuilt/$key.tar.xz"
  rm -rf "$stage"
  echo "$v: prebuilt/$key.tar.xz ($(du -h "prebuilt/$key.tar.xz" | cut -f1), ${#targets[@]} binaries, $(( $(date +%s) - start )) s)"
  if [ -n "$applied" ]; then
    git apply -R "$applied"
    applied=""
  fi
done
