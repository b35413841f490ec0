#!/usr/bin/env bash
# test_prebuilt_bundle.sh GSA: the device scripts' prebuilt binaries (scripts/prebuild.sh, scripts/gpu_build.sh) on a
# copy of the repository's sources:
#  1. scripts/source_key.sh names a source state: the same key for the same files, another one after a source file
#     changes, the first again once it is restored; a file outside the build's folders (docs/) does not count;
#  2. scripts/gpu_build.sh unpacks the bundle named by the tree's key instead of building (its output line, the
#     binary there runs and gives the same layout as GSA);
#  3. a bundle of another key is not used: with GSA_PREBUILT=0 as well, gpu_build.sh goes to the build from source
#     (stopped here before it compiles: `build/python` names a missing interpreter, so configure fails at once).
set -u
gsa=$1
repo=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
status=0
fail() { echo "FAIL: $*"; status=1; }
tree=$dir/tree
mkdir -p "$tree/docs"
(cd "$repo" && cp -r CMakeLists.txt cmake configs kernels runtime parallel serve trainer launcher tests scripts "$tree/")
key() { (cd "$tree" && bash scripts/source_key.sh); }

# 1. The key.
k1=$(key)
[[ $k1 =~ ^[0-9a-f]{16}$ ]] || fail "source_key.sh printed '$k1', not 16 hex digits"
[ "$(key)" == "$k1" ] || fail "the key of the same files changed"
echo "notes" >"$tree/docs/notes.md"
[ "$(key)" == "$k1" ] || fail "a file under docs/ changed the key"
cp "$tree/runtime/src/tokenizer.cpp" "$dir/tokenizer.cpp"
echo "// one more line" >>"$tree/runtime/src/tokenizer.cpp"
[ "$(key)" != "$k1" ] || fail "a changed source file kept the key"
cp "$dir/tokenizer.cpp" "$tree/runtime/src/tokenizer.cpp"
[ "$(key)" == "$k1" ] || fail "the restored source file did not give the first key back"

# 2. The bundle of this tree is unpacked instead of a build.
stage=$dir/stage
mkdir -p "$stage/build/launcher" "$tree/prebuilt"
cp "$gsa" "$stage/build/launcher/gsa"
echo build/launcher/gsa >"$stage/build/prebuilt_files.txt"
echo "key $k1" >"$stage/build/prebuilt_info.txt"
tar -C "$stage" -cf - build | xz -0 -T1 >"$tree/prebuilt/$k1.tar.xz"
(cd "$tree" && bash scripts/gpu_build.sh "$dir/out" gsa) >"$dir/build.txt" 2>&1
grep -q "^build: prebuilt $k1 unpacked and loading" "$dir/build.txt" \
  || fail "gpu_build.sh did not use the bundle: $(cat "$dir/build.txt")"
args=(inspect layout --raw-tokens 9 --sink 1 --chunk 2 --fanout 2 --levels 2)
[ "$("$tree/build/launcher/gsa" "${args[@]}")" == "$("$gsa" "${args[@]}")" ] \
  || fail "the unpacked gsa does not give the built one's output"

# 3. No bundle for this key (or GSA_PREBUILT=0): the build from source, which first removes the bundle's binaries.
fake_python() { mkdir -p "$tree/bin" && printf '#!/bin/sh\nexit 1\n' >"$tree/bin/python3" && chmod +x "$tree/bin/python3"; }
fake_python
mv "$tree/prebuilt/$k1.tar.xz" "$tree/prebuilt/0000000000000000.tar.xz"
for run in other-key no-prebuilt; do
  [ $run = no-prebuilt ] && cp "$tree/prebuilt/0000000000000000.tar.xz" "$tree/prebuilt/$k1.tar.xz"
  (cd "$tree" && PATH="$tree/bin:$PATH" GSA_PREBUILT=$([ $run = no-prebuilt ] && echo 0 || echo 1) \
    bash scripts/gpu_build.sh "$dir/out_$run" gsa) >"$dir/build_$run.txt" 2>&1
  grep -q "^build: prebuilt" "$dir/build_$run.txt" && fail "$run: a bundle was used: $(cat "$dir/build_$run.txt")"
  [ -f "$dir/out_$run/build.log" ] || fail "$run: no build from source was started"
  [ -e "$tree/build/launcher/gsa" ] && fail "$run: the unpacked binary was left where make would see it"
done
[ $status -eq 0 ] && echo "PASS: key $k1; the bundle unpacked in its tree, refused in another"
exit $status
