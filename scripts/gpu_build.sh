#!/usr/bin/env bash
# scripts/gpu_build.sh OUT TARGET...: the build step of the GPU scripts (gpu_kernels_check.sh,
# gpu_train_bench.sh): configures against the image's Python LibTorch (build/python names its python3) and builds
# the targets with every core; the log goes to OUT/build.log, the build time to stdout. On failure: the log's last
# 60 lines and exit 1.
# Prebuilt binaries first: when prebuilt/KEY.tar.xz exists for this tree (KEY: scripts/source_key.sh; made by
# scripts/prebuild.sh on the development machine and carried into the call) and holds every TARGET, it is unpacked
# into build/ instead, if its binaries load here (`gsa --help` and a test binary's --gtest_list_tests, with
# gpu_env.sh's LD_LIBRARY_PATH of the image's libraries); else, or with GSA_PREBUILT=0, the build from source, which
# first removes binaries a bundle left (their times could make them look newer than what make would link).
set -uo pipefail
cd "$(dirname "$0")/.."
out=$1
shift
mkdir -p "$out" build
command -v python3 > build/python
start=$(date +%s)
# tar with xz where the image has xz, else Python's tarfile: bundle_list BUNDLE, bundle_extract BUNDLE.
bundle_list() {
  if command -v xz >/dev/null; then tar -tJf "$1"; else
    python3 -c 'import sys, tarfile; print("\n".join(m.name for m in tarfile.open(sys.argv[1])))' "$1"
  fi
}
bundle_extract() {
  if command -v xz >/dev/null; then tar -xJf "$1"; else
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(".")' "$1"
  fi
}

# Unpacks bundle $1 if it holds every target ($2...: build/launcher/gsa or build/tests/T, as prebuild.sh packs them)
# and they load: gsa's --help and one test binary's --gtest_list_tests (the tests load the same libraries). Returns 1
# otherwise, with the reason in $out/prebuilt.log.
use_prebuilt() {
  local bundle=$1 files t path tested=0
  shift
  source scripts/device_libs.sh  # (set already when gpu_env.sh saw prebuilt/)
  files=$(bundle_list "$bundle" 2>>"$out/prebuilt.log") || return 1
  for t in "$@"; do
    grep -q "^build/.*/$t\$" <<<"$files" || { echo "$bundle lacks $t" >>"$out/prebuilt.log"; return 1; }
  done
  bundle_extract "$bundle" 2>>"$out/prebuilt.log" || return 1
  cat build/prebuilt_info.txt >>"$out/prebuilt.log"
  for t in "$@"; do
    path=./$(grep -m1 "^build/.*/$t\$" <<<"$files")
    if [ "$t" = gsa ]; then
      "$path" --help >/dev/null 2>>"$out/prebuilt.log"
    elif [ $tested = 0 ]; then
      tested=1
      "$path" --gtest_list_tests >/dev/null 2>>"$out/prebuilt.log"
    fi || {
      { echo "$path does not start here:"; ldd "$path" | grep "not found"; } >>"$out/prebuilt.log" 2>&1
      return 1
    }
  done
}

key=$(scripts/source_key.sh)
if [ "${GSA_PREBUILT:-1}" != 0 ] && [ -f "prebuilt/$key.tar.xz" ]; then
  if use_prebuilt "prebuilt/$key.tar.xz" "$@"; then
    echo "build: prebuilt $key unpacked and loading, $(( $(date +%s) - start )) s"
    exit 0
  fi
  echo "prebuilt $key not usable here ($(tail -1 "$out/prebuilt.log")): building from source"
fi
if [ -f build/prebuilt_files.txt ]; then
  xargs rm -f <build/prebuilt_files.txt
  rm -f build/prebuilt_files.txt build/prebuilt_info.txt
fi
GSA_JOBS=${GSA_JOBS:-$(nproc)} scripts/build.sh --target "$@" >"$out/build.log" 2>&1 \
  || { tail -60 "$out/build.log"; exit 1; }
echo "build: $(( $(date +%s) - start )) s"
