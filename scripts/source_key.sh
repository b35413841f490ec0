#!/usr/bin/env bash
# scripts/source_key.sh: prints one line, a SHA-256 over every file the build compiles or reads (CMake files, the
# configs, the sources and tests of every library, the launcher), path and content, in a fixed order. Two trees
# with the same key build the same binaries: scripts/prebuild.sh names its bundles by it here, and
# scripts/gpu_build.sh looks for the bundle of the tree it runs in on the device machine (where .git may be absent,
# so the key reads the files themselves, not git).
set -euo pipefail
cd "$(dirname "$0")/.."
find CMakeLists.txt cmake configs kernels runtime parallel serve trainer launcher tests -type f \
  ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 \
  | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16
