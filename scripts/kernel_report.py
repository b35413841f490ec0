#!/usr/bin/env python3
"""What ptxas made of our CUDA kernels, read without a GPU: compile a kernels/src/*.cu file for sm_90a (the
flags of the build's Hopper target) and list, per kernel, registers, spill bytes, static shared memory and SASS
instructions -- with --base REV beside the same file at a git revision, and whether each kernel's SASS is the
same (addresses and anonymous-namespace hashes aside). --loads REGEX prints, for the kernels whose names match,
their memory operations, barriers and waits in program order up to the first tensor-core instruction: the
round trips a kernel's start takes (the reading behind docs/kernels-notes.md's "read the wait masks").

Usage (from the repository root; nvcc 12+ and cuobjdump -- from the CUDA toolkit or the triton wheel):
  python3 scripts/kernel_report.py kernels/src/sparse_decode.cu
  python3 scripts/kernel_report.py kernels/src/chunk_selection.cu --base HEAD~1 --kernel level_select
  python3 scripts/kernel_report.py kernels/src/sparse_decode.cu --loads 'mma_kernel.*bfloat16.*Li64ELi4E'
Exit status 1 when a kernel spills (the build warns with --warn-on-spills; this names every one) or declares more
than 48 KiB of static shared memory (ptxas 13 compiles that without a word).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

NVCC_FLAGS = ["-DGSA_HAVE_CUDA=1", "--expt-relaxed-constexpr", "--expt-extended-lambda", "-O3", "-DNDEBUG",
              "-std=c++17", "-lineinfo", "--generate-code=arch=compute_90a,code=[sm_90a]", "-Xptxas=-v"]
MEMORY_OPS = r"\b(LDG|LD|LDS|LDL|STG|ST|STS|STL|LDGSTS|LDGDEPBAR|DEPBAR|BAR|ACQBULK|PREEXIT|ATOM|ATOMS|RED|" \
             r"SYNCS|UTMALDG|UBLKCP|EXIT)\b"
TENSOR_OPS = r"\b(HMMA|HGMMA|IMMA)\b"


def find_tool(name):
    """A CUDA binary on PATH, in /usr/local/cuda/bin, or shipped with the triton wheel (cuobjdump)."""
    for candidate in (shutil.which(name), os.path.join("/usr/local/cuda/bin", name)):
        if candidate and os.path.exists(candidate):
            return candidate
    try:
        import triton  # noqa: PLC0415 -- only where the toolkit lacks the binary
        path = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", name)
        if os.path.exists(path):
            return path
    except ImportError:
        pass
    sys.exit(f"kernel_report: {name} not found (CUDA toolkit or the triton wheel)")


def short_name(mangled):
    """The kernel's name with its template arguments, without the namespace and anonymous-namespace hash."""
    name = re.sub(r"^_ZN3gsa7kernels(6detail)?", "", mangled)
    name = re.sub(r"^\d+_GLOBAL__N__\w+?_cu_[0-9a-f]{8}", "", name)
    name = re.sub(r"E?vNS0_\w*$|ENS0_\w*$", "", name)  # the parameter list
    return re.sub(r"^\d+", "", name)


def compile_file(root, path, out_dir):
    """ptxas's per-kernel numbers {kernel: dict} and the cubin's SASS {kernel: [instructions]}."""
    obj = os.path.join(out_dir, os.path.basename(path) + ".o")
    cmd = [find_tool("nvcc"), *NVCC_FLAGS, "-I", os.path.join(root, "kernels/include"),
           "-I", os.path.join(root, "kernels/src"), "-c", os.path.join(root, path), "-o", obj]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"kernel_report: nvcc failed on {path} in {root}:\n{run.stderr[-4000:]}")
    stats, name = {}, None
    for line in run.stderr.splitlines():
        m = re.search(r"Compiling entry function '(\S+)'", line)
        if m:
            name = m.group(1)
            stats[name] = {"regs": 0, "spill_st": 0, "spill_ld": 0, "smem": 0, "stack": 0}
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m and name:
            stats[name].update(stack=int(m.group(1)), spill_st=int(m.group(2)), spill_ld=int(m.group(3)))
        m = re.search(r"Used (\d+) registers", line)
        if m and name:
            stats[name]["regs"] = int(m.group(1))
            s = re.search(r"(\d+) bytes smem", line)
            stats[name]["smem"] = int(s.group(1)) if s else 0
    sass = subprocess.run([find_tool("cuobjdump"), "-sass", obj], capture_output=True, text=True).stdout
    code = {}
    for block in re.split(r"\n\s*Function : ", sass)[1:]:
        kernel = block.split("\n", 1)[0].strip()
        code[kernel] = re.findall(r"/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;", block)
    return stats, code


def normalized(instructions):
    """Instructions without addresses, immediates' hex and anonymous-namespace hashes: equal when the code is."""
    return [re.sub(r"0x[0-9a-f]+", "X", re.sub(r"_GLOBAL__N__[0-9a-f_]+", "ANON", i)) for _, i in instructions]


def print_loads(kernel, instructions):
    print(f"\n{short_name(kernel)}: memory operations, barriers and waits up to the first tensor-core instruction")
    for address, instruction in instructions:
        if re.search(MEMORY_OPS, instruction):
            print(f"  {address}  {instruction}")
        if re.search(TENSOR_OPS, instruction):
            print(f"  {address}  {instruction}   <- first tensor-core instruction")
            break


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", help="CUDA sources, e.g. kernels/src/sparse_decode.cu")
    parser.add_argument("--base", help="git revision to compare with (its kernels/ tree, compiled alike)")
    parser.add_argument("--kernel", default="", help="only kernels whose names match this regular expression")
    parser.add_argument("--loads", help="print the start of the kernels whose names match this regular expression")
    args = parser.parse_args()
    root = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True).stdout.strip()
    root = root or os.getcwd()
    spilled = False  # or over the static shared-memory limit: exit status 1
    with tempfile.TemporaryDirectory() as tmp:
        base_root = None
        if args.base:
            base_root = os.path.join(tmp, "base")
            os.makedirs(base_root)
            archive = subprocess.run(["git", "-C", root, "archive", args.base, "kernels"], capture_output=True)
            if archive.returncode != 0:
                sys.exit(f"kernel_report: git archive {args.base} failed: {archive.stderr.decode()[-500:]}")
            subprocess.run(["tar", "-x", "-C", base_root], input=archive.stdout, check=True)
        for path in args.files:
            stats, code = compile_file(root, path, tmp)
            base_stats, base_code = compile_file(base_root, path, tmp) if base_root else ({}, {})
            # Kernels keyed by short name: the anonymous namespace's hash depends on the file's path.
            base_stats = {short_name(k): v for k, v in base_stats.items()}
            base_code = {short_name(k): v for k, v in base_code.items()}
            print(f"== {path}" + (f" (against {args.base})" if args.base else ""))
            header = f"{'kernel':70} {'regs':>5} {'spill st/ld':>11} {'stack':>5} {'smem':>6} {'instrs':>6}"
            print(header + ("   base: regs spill instrs sass" if base_root else ""))
            for kernel in sorted(stats):
                if not re.search(args.kernel, short_name(kernel)):
                    continue
                s = stats[kernel]
                spilled |= s["spill_st"] > 0 or s["spill_ld"] > 0
                line = (f"{short_name(kernel)[:70]:70} {s['regs']:5} {s['spill_st']:5}/{s['spill_ld']:<5} "
                        f"{s['stack']:5} {s['smem']:6} {len(code.get(kernel, [])):6}")
                if s["smem"] > 48 * 1024:
                    line += "   over the 48 KiB of static shared memory a CTA may declare"
                    spilled = True
                if base_root:
                    b = base_stats.get(short_name(kernel))
                    if b is None:
                        line += "   (new)"
                    else:
                        b_code = base_code.get(short_name(kernel), [])
                        same = normalized(code.get(kernel, [])) == normalized(b_code)
                        line += (f"   {b['regs']:5} {b['spill_st']:3}/{b['spill_ld']:<3} {len(b_code):6} "
                                 f"{'same' if same else 'differs'}")
                print(line)
            if base_root:
                for kernel in sorted(set(base_stats) - {short_name(k) for k in stats}):
                    if re.search(args.kernel, kernel):
                        print(f"{kernel[:70]:70}   (gone)")
            if args.loads:
                for kernel in sorted(code):
                    if re.search(args.loads, short_name(kernel)):
                        print_loads(kernel, code[kernel])
    return 1 if spilled else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # piped into head
        sys.exit(0)
