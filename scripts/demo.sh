#!/usr/bin/env bash
# The demo: installs what is missing, builds, and trains the embedded default (a tiny GSA model on synthetic
# key-value retrieval, one CPU process), printing loss and answer accuracy. Extra arguments go to `gsa train`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh --target gsa
exec ./build/launcher/gsa train "$@"
