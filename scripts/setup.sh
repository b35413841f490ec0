#!/usr/bin/env bash
# Installs what gsa needs on a Debian 12 machine, skipping what is already there (safe to re-run):
#   Debian: compilers, CMake, OpenMPI, Protobuf, Boost, GoogleTest, ccache, xz (scripts/prebuild.sh's bundles)
#   PyPI:   torch==2.11.0 (its LibTorch is what gsa links), with --tests the oracles the tests use
#           (transformers, safetensors, numpy, tensorboard, tokenizers, openai), with --demo matplotlib (the
#           demo's loss plot)
# The Python with torch is written to build/python (one line) for the other scripts. If the system python3
# cannot take pip packages (PEP 668), a virtual environment is made in .venv.
# Usage: scripts/setup.sh [--tests] [--demo]
set -euo pipefail
cd "$(dirname "$0")/.."
want_tests=0 want_demo=0
for arg in "$@"; do
  case "$arg" in
    --tests) want_tests=1 ;;
    --demo) want_demo=1 ;;
    *) echo "setup: unknown argument '$arg' (expected --tests or --demo)" >&2; exit 2 ;;
  esac
done

sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi

debs=(build-essential cmake git python3 python3-pip python3-venv libopenmpi-dev openmpi-bin
      libprotobuf-dev protobuf-compiler libboost-dev libgtest-dev ccache xz-utils)
missing=()
for p in "${debs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi

pick_python() {
  for py in "${GSA_PYTHON:-}" .venv/bin/python3 python3; do
    [ -n "$py" ] && command -v "$py" >/dev/null 2>&1 || continue
    if "$py" -c 'import sys, torch; sys.exit(0 if torch.__version__.startswith("2.11.0") else 1)' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  return 1
}

py=$(pick_python || true)
if [ -z "$py" ]; then
  echo "setup: installing torch==2.11.0 from PyPI (LibTorch for the build; a few GB)"
  if python3 -m pip install -q torch==2.11.0 2>/tmp/gsa-pip.log; then
    py=python3
  else
    echo "setup: system python3 refused pip packages; using a virtual environment in .venv"
    python3 -m venv .venv
    .venv/bin/python3 -m pip install -q --upgrade pip
    .venv/bin/python3 -m pip install -q torch==2.11.0
    py=.venv/bin/python3
  fi
fi
py=$(command -v "$py")

if [ "$want_tests" = 1 ]; then
  if ! "$py" -c 'import transformers, safetensors, numpy, tensorboard, tokenizers, openai' 2>/dev/null; then
    echo "setup: installing the test oracles (transformers, safetensors, numpy, tensorboard, tokenizers, openai)"
    "$py" -m pip install -q transformers safetensors numpy tensorboard tokenizers openai
  fi
fi
if [ "$want_demo" = 1 ] && ! "$py" -c 'import matplotlib' 2>/dev/null; then
  echo "setup: installing matplotlib (the demo's loss plot)"
  "$py" -m pip install -q matplotlib
fi
mkdir -p build
echo "$py" > build/python
echo "setup: ready (python: $py, torch $("$py" -c 'import torch; print(torch.__version__)' 2>/dev/null))"
