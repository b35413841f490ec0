// gsa bench decode: one decode step of one attention layer on one GPU, the way Generator and the server run it
// (decode_plan.h, decode_attention.h): B sequences of N raw context tokens each (gisted) plus a 16-token suffix,
// one query per sequence. Per length, three layer kinds: an ordinary layer (the query sees every top-level gist,
// the sink and its local window through the mask) and a selective layer with the adaptive budget and with a
// fixed budget of --fixed-k chunks per head (selection over the gists, then the unfolded chunks). Columns: step_ms,
// the whole layer step (cache write, selection, attention) run eagerly, timed on the host with a synchronisation
// (device_timing.h's median_wall_ms: the launches and a round trip included); graph_ms, the same step replayed from
// a CUDA graph as Generator and the server run a step (decode_graph.h), timed on the GPU (median_device_ms: CUDA
// events, the L2 flushed before each call, as the peers' triton.testing.do_bench times them); selection alone and
// the sparse decode kernel alone over the same rows, timed the same way; the rows the kernel reads per (sequence,
// KV head), and its K/V read bandwidth with the share of the H200's measured 4.2 TB/s copy bandwidth. Medians over
// --repeats calls after two warm-ups; sequences/s from graph_ms. The dense peer (SDPA flash decoding over the whole
// cache) runs in the same device call from scripts/gpu_kernels_check.sh; docs/PERFORMANCE.md holds the ratios.
#include <ATen/ATen.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "cli_flags.h"
#include "commands.h"
#include "device_timing.h"
#include "gist_flags.h"
#include "gsa/runtime/decode_attention.h"
#include "gsa/runtime/decode_graph.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/gist_layout.h"
#include "gsa/runtime/sparse_decode.h"

namespace gsa::cli {
namespace {

const char* const kHelp =
    "usage: gsa bench decode [flags]\n"
    "\n"
    "Time one decode step of one attention layer (selection + sparse decode kernel) on one GPU.\n"
    "\n"
    "flags:\n"
    "  --tokens 32768,131072,524288,1048576   raw context tokens N per sequence\n"
    "  --batch 1                  sequences decoded together\n"
    "  --heads 32 --kv-heads 8 --head-dim 128\n"
    "  --chunk 16 --fanout 4 --levels 1 --sink 3 --prev-chunks 1\n"
    "  --fixed-k 16               chunks per head per level of the fixed budget\n"
    "  --dtype bf16|fp16   --repeats 50\n";

constexpr double kCopyBandwidth = 4.2e12;  // H200, measured (docs/PERFORMANCE.md)

struct LayerKind {
  const char* name;
  bool selects;
  BudgetKind budget;
};

}  // namespace

int run_bench_decode(const Args& args) {
  Flags flags(args, "bench decode");
  if (flags.help()) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  const std::vector<int64_t> tokens = flags.get_int_list("tokens", {32768, 131072, 524288, 1048576});
  const int64_t batch = flags.get_int("batch", 1);
  const int64_t hq = flags.get_int("heads", 32), hkv = flags.get_int("kv-heads", 8), d = flags.get_int("head-dim", 128);
  const GistOptions gist = read_gist_flags(flags, /*chunk=*/16, /*levels=*/1);
  const int64_t fixed_k = flags.get_int("fixed-k", 16);
  const std::string dtype_name = flags.get_string("dtype", "bf16");
  const int64_t repeats = flags.get_int("repeats", 50);
  flags.finish();
  GSA_CHECK(at::hasCUDA(), "gsa bench decode needs a CUDA device");
  GSA_CHECK(batch >= 1 && fixed_k >= 1, "gsa bench decode: --batch and --fixed-k must be >= 1");
  GSA_CHECK(dtype_name == "bf16" || dtype_name == "fp16", "gsa bench decode: --dtype must be bf16 or fp16");
  const auto opts = at::TensorOptions().dtype(dtype_name == "fp16" ? at::kHalf : at::kBFloat16).device(at::kCUDA);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));

  std::printf(
      "gsa bench decode: %s, batch %lld, Hq %lld / Hkv %lld, D %lld, c0 %lld, levels %lld, sink %lld, "
      "N %lld, fixed budget %lld\n",
      dtype_name.c_str(), (long long)batch, (long long)hq, (long long)hkv, (long long)d, (long long)gist.chunk,
      (long long)gist.levels, (long long)gist.sink, (long long)gist.prev_chunks, (long long)fixed_k);
  std::printf("%9s %-18s %9s %10s %10s %10s %10s %9s %7s %12s\n", "N", "layer", "rows", "step_ms", "graph_ms",
              "select_ms", "kernel_ms", "GB/s", "of_bw", "sequences/s");
  const LayerKind kinds[] = {{"ordinary", false, BudgetKind::kAdaptive},
                             {"selective-adaptive", true, BudgetKind::kAdaptive},
                             {"selective-fixed", true, BudgetKind::kFixed}};
  for (int64_t n : tokens) {
    GSA_CHECK(n > gist.sink, "gsa bench decode: --tokens ", n, " must exceed the sink");
    std::mt19937 rng(static_cast<uint32_t>(n));
    std::vector<GistLayout> rows;
    for (int64_t b = 0; b < batch; ++b) {
      Document doc;
      for (int64_t i = 0; i < n; ++i) doc.context.push_back(rng() % 256);
      for (int64_t i = 0; i < 16; ++i) doc.suffix.push_back(rng() % 256);
      rows.push_back(build_layout({doc}, gist));
      rows.back().append_raw(rng() % 256);
    }
    std::vector<const GistLayout*> pointers;
    for (const GistLayout& r : rows) pointers.push_back(&r);
    const int64_t length = rows[0].size();
    KvCache cache{{at::randn({batch, hkv, length, d}, opts)}, {at::randn({batch, hkv, length, d}, opts)}};
    const at::Tensor q = at::randn({batch, hq, 1, d}, opts), k = at::randn({batch, hkv, 1, d}, opts),
                     v = at::randn({batch, hkv, 1, d}, opts);
    for (const LayerKind& kind : kinds) {
      AttentionOptions options;
      options.selection.budget = kind.budget;
      options.selection.fixed_k = fixed_k;
      const DecodePlan plan(pointers, options, at::kCUDA);
      DecodeLayerAttention attention(plan, options, cache);
      const at::Tensor q1 = q.select(2, 0);
      const at::Tensor listed = attention.key_rows(0, kind.selects, q1);
      const double step_ms =
          median_wall_ms([&] { return attention.attend(0, kind.selects, q, k, v, scale); }, repeats);
      DecodeStepGraph graph;  // warm-up, capture, then replays
      const double graph_ms = median_device_ms(
          [&] { return graph.run([&] { return attention.attend(0, kind.selects, q, k, v, scale); }, false); },
          repeats);
      GSA_CHECK(graph.captures() == 1, "gsa bench decode: the layer step was captured ", graph.captures(), " times");
      const double select_ms =
          kind.selects ? median_device_ms([&] { return attention.key_rows(0, true, q1); }, repeats) : 0.0;
      const double kernel_ms = median_device_ms(
          [&] { return sparse_decode(q1, cache.k[0], cache.v[0], listed, scale, 0, &plan.generated()).out; }, repeats);
      const double rows_read =
          static_cast<double>((listed >= 0).sum().item<int64_t>()) / (batch * hkv) + plan.generated().max_rows;
      const double bytes = 2.0 * batch * hkv * rows_read * d * at::elementSize(opts.dtype().toScalarType());
      std::printf("%9lld %-18s %9.0f %10.4f %10.4f %10.4f %10.4f %9.0f %6.1f%% %12.0f\n", (long long)n, kind.name,
                  rows_read, step_ms, graph_ms, select_ms, kernel_ms, bytes / kernel_ms * 1e-6,
                  100.0 * bytes / (kernel_ms * 1e-3) / kCopyBandwidth, batch / graph_ms * 1e3);
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace gsa::cli
