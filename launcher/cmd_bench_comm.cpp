// gsa bench comm: what sequence-parallel GSA moves between ranks per layer, and how long it takes, next to what
// a ring of the full KV (Ring Attention / context parallelism) moves for the same sequence. Run under mpirun,
// one rank per GPU: `mpirun -np 4 gsa bench comm --backend nccl`.
//
// Per N (one document: N - suffix gisted context tokens, then `suffix` raw tokens; cut at top-level sections
// over the world as one sp group), with the payload shapes the sequence-parallel attention itself builds
// (make_sp_exchange, select_chunks, route_unfolding):
//   gist tree   all-gather of the gist and sink K/V of every level (all_gather_rows)
//   halo        the previous chunk(s) K/V from the rank(s) before (exchange_rows)
//   routing     prefill unfolding: the suffix queries' selected chunks that live on other ranks (both
//               all-to-alls, the query heads out and partial outputs + log-sum-exp back)
//   decode      one decode step's merge: all-gather of every rank's partial output and log-sum-exp
//   ring        the ring baseline: sp - 1 steps, each rank sending its whole K/V shard to the next rank
// Bytes: what one rank sends per layer (the largest over ranks). Time: median over --iters of the slowest
// rank's wall time per call (barrier before each call), after one warm-up.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
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
#include "gsa/runtime/attention_plan.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/selection.h"

namespace gsa::cli {
namespace {

const char* const kCommHelp =
    "usage: mpirun -np P gsa bench comm [flags]\n"
    "\n"
    "Bytes and time per layer of the sequence-parallel collectives (gist-tree all-gather, halo, unfold routing,\n"
    "decode merge) against a ring of the full KV, with the P ranks as one sp group.\n"
    "\n"
    "flags:\n"
    "  --tokens 131072,262144,524288,1048576   sequence lengths N\n"
    "  --backend nccl|mpi       (default: nccl when CUDA is available, else mpi)\n"
    "  --heads 32 --kv-heads 8 --head-dim 64 --dtype bf16|fp32   (Llama-3.2-1B shapes by default)\n"
    "  --chunk 8 --fanout 4 --levels 1 --sink 3 --prev-chunks 1\n"
    "  --suffix 16              raw suffix tokens (the selective queries of the prefill)\n"
    "  --iters 10               timed calls per collective (median), after one warm-up\n"
    "  --timeout-s 300          communicator deadline\n"
    "  --csv FILE               rank 0 writes one row per (N, collective)\n";

struct Shape {
  int64_t heads = 32, kv_heads = 8, head_dim = 64, suffix = 16, iters = 10;
  at::ScalarType dtype = at::kBFloat16;
  GistOptions gist;
};

struct Measured {
  std::string name;
  int64_t bytes = 0;  // sent by one rank per layer (max over ranks)
  double ms = 0;      // median of the slowest rank's time per call
};

GistLayout bench_layout(int64_t n, const Shape& s) {
  std::mt19937 rng(1);
  Document doc;
  for (int64_t i = 0; i < n - s.suffix; ++i) doc.context.push_back(rng() % 256);
  for (int64_t i = 0; i < s.suffix; ++i) doc.suffix.push_back(rng() % 256);
  return build_layout({doc}, s.gist);
}

std::vector<Measured> bench_one(int64_t n, const Shape& s, Communicator& sp, at::Device device) {
  const std::vector<GistLayout> rows{bench_layout(n, s)};
  const GistLayout& layout = rows[0];
  const SequenceShards shards = shard_at_sections(rows, sp.size());
  const int me = sp.rank(), tail = sp.size() - 1;
  const int64_t local = shards.shard_size(me);
  const int64_t hkv = s.kv_heads, d = s.head_dim;
  const auto opts = at::TensorOptions().dtype(s.dtype).device(device);
  const int64_t elem = at::elementSize(s.dtype);
  AttentionOptions attention;

  // The halo width: the local window of this rank's first context queries (make_sp_forward_plan takes it from
  // the plan of all of them; the suffix queries' band also spans the suffix, which only the tail owns).
  const int64_t first = shards.shard_begin(me);
  const AttentionPlan head_plan = make_attention_plan({&layout}, first, std::min<int64_t>(64, local), attention, device);
  SpExchange ex = make_sp_exchange(rows, shards, head_plan.band_width - 1, sp, device);
  const int64_t suffix_begin = layout.size() - s.suffix;
  AttentionPlan suffix_plan = make_attention_plan({&layout}, suffix_begin, s.suffix, attention, device);

  at::Generator gen = at::detail::createCPUGenerator(7 + me);
  at::Tensor kv = at::randn({1, hkv, local, 2 * d}, gen, at::kFloat).to(opts);                 // [B, Hkv, Tl, 2D]
  at::Tensor by_pos = kv.permute({2, 0, 1, 3});                                                // [Tl, B, Hkv, 2D]
  at::NoGradGuard no_grad;
  std::vector<Measured> out;
  auto max_bytes = [&](int64_t bytes) { return sp.all_reduce_int(bytes, ReduceOp::kMax); };

  // Gist tree (+ sinks).
  at::Tensor gathered;
  Measured tree{"gist tree all-gather", max_bytes(ex.own_row.numel() * hkv * 2 * d * elem), 0};
  tree.ms = slowest_rank_median_ms(sp, s.iters, [&] {
    gathered = all_gather_rows(own_replicated_rows(ex, kv), sp, ex.replicated_counts);
  }, false);
  out.push_back(tree);

  // Halo.
  int64_t halo_rows = 0;
  for (const RowSend& send : ex.halo.sends) halo_rows += send.count;
  Measured halo{"halo send/recv", max_bytes(halo_rows * hkv * 2 * d * elem), 0};
  halo.ms = slowest_rank_median_ms(sp, s.iters, [&] { exchange_rows(by_pos, sp, ex.halo); }, false);
  out.push_back(halo);

  // Routing: the tail rank's suffix queries select over the replicated tree; keys it does not hold are routed.
  at::Tensor tree_k = at::zeros({ex.replicated_width, hkv, d}, opts)
                          .index_put({ex.replicated_target}, gathered.narrow(-1, 0, d))
                          .permute({1, 0, 2}).unsqueeze(0);                                    // [1, Hkv, W, D]
  AttentionPlan plan = suffix_plan;
  RemoteSelection remote;
  if (me == tail) {
    remote.q = at::randn({s.suffix, s.heads, d}, gen, at::kFloat).to(opts);
    ChunkSelection chosen = select_chunks(remote.q, tree_k, plan, attention.selection, ex.replicated_slot);
    at::Tensor held = ex.key_slot.index({at::zeros_like(chosen.key_pos), chosen.key_pos.clamp_min(0)}) >= 0;
    remote.key_pos = chosen.key_pos.masked_fill(held, -1);
  } else {
    plan.selection = SelectionPlan{};  // no selective queries here
  }
  at::Tensor q_source = at::zeros({1, s.heads, 1, d}, opts);
  at::Tensor k_own = kv.narrow(-1, 0, d), v_own = kv.narrow(-1, d, d);
  RoutingTraffic traffic;
  route_unfolding(remote, q_source, plan, shards, k_own, v_own, sp, 0.125, &traffic);
  Measured routing{"unfold routing (prefill)", max_bytes(traffic.bytes_sent), 0};
  routing.ms = slowest_rank_median_ms(
      sp, s.iters, [&] { route_unfolding(remote, q_source, plan, shards, k_own, v_own, sp, 0.125); }, false);
  out.push_back(routing);

  // Decode merge: every rank's partial output + log-sum-exp for one query.
  AttentionPlan step = make_attention_plan({&layout}, layout.size() - 1, 1, attention, device);
  at::Tensor partial = at::zeros({1 * s.heads * step.padded_queries() * (d + 1)}, at::TensorOptions().device(device));
  at::Tensor merged = at::empty({sp.size() * partial.numel()}, partial.options());
  Measured decode{"decode merge all-gather", static_cast<int64_t>(partial.nbytes()), 0};
  decode.ms = slowest_rank_median_ms(sp, s.iters, [&] { sp.all_gather(partial, merged); }, false);
  out.push_back(decode);

  // Ring baseline: sp - 1 steps of sending the whole K/V shard to the next rank.
  const int64_t max_local = sp.all_reduce_int(local, ReduceOp::kMax);
  at::Tensor ring_send = at::zeros({max_local, hkv, 2 * d}, opts), ring_recv = at::empty_like(ring_send);
  Measured ring{"ring of full KV (baseline)", (sp.size() - 1) * max_local * hkv * 2 * d * elem, 0};
  ring.ms = slowest_rank_median_ms(sp, s.iters, [&] {
    for (int step_i = 0; step_i + 1 < sp.size(); ++step_i) {
      sp.send_recv({{(me + 1) % sp.size(), ring_send}}, {{(me + sp.size() - 1) % sp.size(), ring_recv}});
    }
  }, false);
  out.push_back(ring);
  return out;
}

}  // namespace

int run_bench_comm(const Args& args) {
  Flags flags(args, "bench comm");
  if (flags.help()) {
    std::fputs(kCommHelp, stdout);
    return 0;
  }
  const std::vector<int64_t> tokens = flags.get_int_list("tokens", {131072, 262144, 524288, 1048576});
  Shape s;
  s.heads = flags.get_int("heads", 32);
  s.kv_heads = flags.get_int("kv-heads", 8);
  s.head_dim = flags.get_int("head-dim", 64);
  const std::string dtype = flags.get_string("dtype", "bf16");
  s.gist = read_gist_flags(flags, /*chunk=*/8, /*levels=*/1);
  s.suffix = flags.get_int("suffix", 16);
  s.iters = flags.get_int("iters", 10);
  const CommFlags comm = read_comm_flags(flags, "timeout-s", 300);
  const std::string csv_path = flags.get_string("csv", "");
  flags.finish();
  GSA_CHECK(s.heads >= 1 && s.kv_heads >= 1 && s.heads % s.kv_heads == 0, "gsa bench comm: --kv-heads ", s.kv_heads,
            " must divide --heads ", s.heads);
  GSA_CHECK(dtype == "bf16" || dtype == "fp32", "gsa bench comm: --dtype must be bf16 or fp32, got '", dtype, "'");
  GSA_CHECK(s.iters >= 1 && s.suffix >= 1, "gsa bench comm: --iters and --suffix must be >= 1");
  s.dtype = dtype == "bf16" ? at::kBFloat16 : at::kFloat;
  for (int64_t n : tokens) {
    GSA_CHECK(n > s.suffix + s.gist.sink + s.gist.chunk, "gsa bench comm: --tokens ", n, " too short");
  }

  return run_mpi_job([&](const MpiSession& session) {
    at::set_num_threads(1);
    ProcessGroups groups = make_process_groups(session, 1, session.world_size(), comm.backend, comm.timeout);
    Communicator& sp = *groups.sp;
    const bool root = sp.rank() == 0;
    std::ofstream csv;
    if (root && !csv_path.empty()) {
      csv.open(csv_path);
      GSA_CHECK(csv.good(), "gsa bench comm: cannot write --csv ", csv_path);
      csv << "ranks,backend,tokens,collective,bytes_per_rank,ms\n";
    }
    if (root) {
      std::printf("gsa bench comm: %d ranks (%s), %s, Hq %lld / Hkv %lld, d %lld, c0 %lld, levels %lld, suffix %lld\n",
                  sp.size(), sp.name().c_str(), dtype.c_str(), (long long)s.heads, (long long)s.kv_heads,
                  (long long)s.head_dim, (long long)s.gist.chunk, (long long)s.gist.levels, (long long)s.suffix);
      std::printf("%9s  %-28s %14s %10s %12s\n", "tokens", "collective (per layer)", "MiB sent/rank", "ms",
                  "vs ring bytes");
    }
    for (int64_t n : tokens) {
      std::vector<Measured> rows = bench_one(n, s, sp, groups.device);
      const double ring_bytes = static_cast<double>(rows.back().bytes);
      for (const Measured& m : rows) {
        if (!root) continue;
        std::printf("%9lld  %-28s %14.3f %10.3f %11.4fx\n", (long long)n, m.name.c_str(), m.bytes / 1048576.0, m.ms,
                    m.bytes / ring_bytes);
        if (csv.is_open()) {
          csv << sp.size() << "," << comm.backend_name << "," << n << "," << m.name << "," << m.bytes << "," << m.ms << "\n";
        }
      }
      std::fflush(stdout);
    }
    return 0;
  });
}

}  // namespace gsa::cli
