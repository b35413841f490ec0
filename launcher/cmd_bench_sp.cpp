// gsa bench sp: one sequence-parallel GSA attention layer, forward and forward+backward, at growing sequence
// lengths on the ranks of one sp group: what sequence parallelism buys in time and memory per GPU. Run the same
// command with -np 1 (the single-GPU baseline: the same code with no peers), 2 and 4:
//   mpirun -np 4 gsa bench sp --backend nccl --tokens 32768,65536,131072
//
// Per N: one document of N tokens (gisted context, the training shape: gist mask, no selection), cut at
// top-level sections; q [1, Hq, N/sp, D], k, v [1, Hkv, N/sp, D] random on each rank; the layer is
// SequenceParallelAttention (gist-tree all-gather, halo, local GSA attention; backward through the
// reduce-scatter and the reverse halo). Columns: plan = make_sp_forward_plan (host metadata + one small
// collective, once per forward for all layers); fwd, fwd+bwd = median over --repeats of the slowest rank
// after one warm-up; peak = the largest per-rank peak of allocated device memory during fwd+bwd, beyond the
// inputs. A length that does not fit is reported as out of memory (every rank agrees before going on).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cli_flags.h"
#include "commands.h"
#include "gist_flags.h"
#include "mpi_launch.h"
#include "rank_timing.h"
#include "gsa/parallel/process_groups.h"
#include "gsa/parallel/sp_attention.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/memory_tracker.h"

namespace gsa::cli {
namespace {

const char* const kSpHelp =
    "usage: mpirun -np P gsa bench sp [flags]\n"
    "\n"
    "Time and per-rank memory of one sequence-parallel GSA attention layer (forward, forward+backward) with the\n"
    "P ranks as one sp group. -np 1 is the single-device baseline.\n"
    "\n"
    "flags:\n"
    "  --tokens 32768,65536,131072   sequence lengths N\n"
    "  --backend nccl|mpi       (default: nccl when CUDA is available, else mpi)\n"
    "  --heads 32 --kv-heads 8 --head-dim 128 --dtype bf16|fp32\n"
    "  --chunk 16 --fanout 4 --levels 2 --sink 3 --prev-chunks 1\n"
    "  --repeats 3              timed calls (median of the slowest rank), after one warm-up\n"
    "  --timeout-s 600          communicator deadline\n";

struct Options {
  int64_t heads = 32, kv_heads = 8, head_dim = 128, repeats = 3;
  at::ScalarType dtype = at::kBFloat16;
  GistOptions gist;
};

struct Row {
  int64_t tokens = 0, local = 0;
  double plan_ms = 0, fwd_ms = 0, fwd_bwd_ms = 0, peak_gib = 0;
  bool fits = true;
};

Row bench_one(int64_t n, const Options& o, Communicator& sp, const at::Device& device) {
  std::mt19937 rng(3);
  Document doc;
  for (int64_t i = 0; i < n; ++i) doc.context.push_back(rng() % 256);
  const std::vector<GistLayout> rows{build_layout({doc}, o.gist)};
  const SequenceShards shards = shard_at_sections(rows, sp.size());
  AttentionOptions attention;
  Row row;
  row.tokens = rows[0].size();
  row.local = shards.shard_size(sp.rank());

  SpForwardPlan plan;
  row.plan_ms = slowest_rank_median_ms(
      sp, 1, [&] { plan = make_sp_forward_plan(rows, shards, attention, sp, device); }, true);
  at::Generator gen = at::detail::createCPUGenerator(11 + sp.rank());
  const auto opts = at::TensorOptions().dtype(o.dtype).device(device);
  auto input = [&](int64_t heads) {
    return at::randn({1, heads, row.local, o.head_dim}, gen, at::kFloat).to(opts).requires_grad_();
  };
  at::Tensor q = input(o.heads), k = input(o.kv_heads), v = input(o.kv_heads);
  at::Tensor grad = at::randn({1, o.heads, row.local, o.head_dim}, gen, at::kFloat).to(opts);
  SequenceParallelAttention layer(plan, attention.selection, sp);
  const double scale = 1.0 / std::sqrt(static_cast<double>(o.head_dim));

  // Out of memory on any rank: every rank learns it before the next collective.
  int64_t failed = 0;
  try {
    at::NoGradGuard no_grad;
    row.fwd_ms = slowest_rank_median_ms(sp, o.repeats, [&] { layer.attend(0, false, q, k, v, scale); }, true);
  } catch (const c10::Error&) {
    failed = 1;
  }
  if (sp.all_reduce_int(failed, ReduceOp::kMax) == 0) {
    try {
      MemoryTracker::reset_peak(device);
      const int64_t before = MemoryTracker::current_bytes(device);
      row.fwd_bwd_ms = slowest_rank_median_ms(sp, o.repeats, [&] {
        layer.attend(0, false, q, k, v, scale).backward(grad);
        q.mutable_grad() = k.mutable_grad() = v.mutable_grad() = at::Tensor();
      }, true);
      row.peak_gib = static_cast<double>(MemoryTracker::peak_bytes(device) - before) / (1 << 30);
    } catch (const c10::Error&) {
      failed = 1;
    }
  }
  row.fits = sp.all_reduce_int(failed, ReduceOp::kMax) == 0;
  at::Tensor peak = at::full({1}, row.peak_gib, at::TensorOptions().dtype(at::kDouble).device(sp.device()));
  sp.all_reduce(peak, ReduceOp::kMax);
  row.peak_gib = peak.item<double>();
  return row;
}

}  // namespace

int run_bench_sp(const Args& args) {
  Flags flags(args, "bench sp");
  if (flags.help()) {
    std::fputs(kSpHelp, stdout);
    return 0;
  }
  const std::vector<int64_t> tokens = flags.get_int_list("tokens", {32768, 65536, 131072});
  Options o;
  o.heads = flags.get_int("heads", 32);
  o.kv_heads = flags.get_int("kv-heads", 8);
  o.head_dim = flags.get_int("head-dim", 128);
  const std::string dtype = flags.get_string("dtype", "bf16");
  o.gist = read_gist_flags(flags, /*chunk=*/16, /*levels=*/2);
  o.repeats = flags.get_int("repeats", 3);
  const CommFlags comm = read_comm_flags(flags, "timeout-s", 600);
  flags.finish();
  GSA_CHECK(o.heads >= 1 && o.kv_heads >= 1 && o.heads % o.kv_heads == 0, "gsa bench sp: --kv-heads ", o.kv_heads,
            " must divide --heads ", o.heads);
  GSA_CHECK(dtype == "bf16" || dtype == "fp32", "gsa bench sp: --dtype must be bf16 or fp32, got '", dtype, "'");
  GSA_CHECK(o.repeats >= 1, "gsa bench sp: --repeats must be >= 1");
  o.dtype = dtype == "bf16" ? at::kBFloat16 : at::kFloat;

  return run_mpi_job([&](const MpiSession& session) {
    at::set_num_threads(session.world_size() > 1 ? 1 : at::get_num_threads());
    MemoryTracker::install();
    ProcessGroups groups = make_process_groups(session, 1, session.world_size(), comm.backend, comm.timeout);
    Communicator& sp = *groups.sp;
    const bool root = sp.rank() == 0;
    if (root) {
      std::printf("gsa bench sp: %d rank(s) (%s), %s, Hq %lld / Hkv %lld, d %lld, c0 %lld, fanout %lld, levels %lld\n",
                  sp.size(), sp.name().c_str(), dtype.c_str(), (long long)o.heads, (long long)o.kv_heads,
                  (long long)o.head_dim, (long long)o.gist.chunk, (long long)o.gist.fanout, (long long)o.gist.levels);
      std::printf("%9s %9s %10s %10s %12s %14s\n", "tokens", "per rank", "plan ms", "fwd ms", "fwd+bwd ms",
                  "peak GiB/rank");
    }
    for (int64_t n : tokens) {
      Row r = bench_one(n, o, sp, groups.device);
      if (!root) continue;
      if (r.fits) {
        std::printf("%9lld %9lld %10.1f %10.1f %12.1f %14.2f\n", (long long)r.tokens, (long long)r.local, r.plan_ms,
                    r.fwd_ms, r.fwd_bwd_ms, r.peak_gib);
      } else {
        std::printf("%9lld %9lld %10.1f %10s %12s %14s\n", (long long)r.tokens, (long long)r.local, r.plan_ms,
                    "OOM", "OOM", "-");
      }
      std::fflush(stdout);
    }
    return 0;
  });
}

}  // namespace gsa::cli
