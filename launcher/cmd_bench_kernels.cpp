// gsa bench kernels: the block-sparse GSA attention kernels (runtime/sparse_attention.h) on one GPU, forward and
// forward+backward, at growing lengths, with useful TFLOP/s (4 * D * Hq per allowed (query, key) pair forward,
// 3.5x that forward+backward: the dense-attention convention) and the share of the work the tile plan visits
// that is useful. One document per row: N - 16 context tokens gisted, 16 raw suffix tokens. Time: the GPU's, median
// over --repeats calls after two warm-ups, each after an L2 flush (device_timing.h's median_device_ms, the way the
// peers' triton.testing.do_bench times them); the tile plan is built once outside the timing (every layer of a
// forward shares it) and its build time is reported on its own. The peers run in the same device call
// (scripts/gpu_kernels_check.sh); docs/PERFORMANCE.md holds the ratios.
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <vector>

#include "cli_flags.h"
#include "device_timing.h"
#include "commands.h"
#include "gist_flags.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/gist_layout.h"
#include "gsa/runtime/mask_predicate.h"
#include "gsa/runtime/sparse_attention.h"
#include "gsa/runtime/sparse_decode.h"
#include "gsa/runtime/tile_plan.h"

namespace gsa::cli {
namespace {

const char* const kHelp =
    "usage: gsa bench kernels [flags]\n"
    "\n"
    "Time the block-sparse GSA attention kernels, forward and forward+backward (one GPU).\n"
    "\n"
    "flags:\n"
    "  --tokens 8192,32768,131072   sequence lengths N\n"
    "  --heads 32 --kv-heads 8 --head-dim 128   (Llama-3.2-1B attention: 32 / 8 / 64)\n"
    "  --chunk 16 --fanout 4 --levels 1 --sink 3 --prev-chunks 1\n"
    "  --dtype bf16|fp16 (default bf16)   --repeats 10   --no-backward\n"
    "  --max-backward-tiles -1   query tiles per backward work item (tile_plan.h; 0: deterministic, -1: by the\n"
    "                    plan's size, backward_item_tiles)\n"
    "  --peak-tflops 989 the GPU's dense 16-bit matrix peak the TFLOP/s columns are shared against (989: H100 /\n"
    "                    H200 SXM bf16)\n"
    "\n"
    "  --decode          instead: sparse decode (runtime/sparse_decode.h), one query per sequence over T / 16\n"
    "                    listed cache rows per KV head (the rows a 16x-compressed selection reads)\n"
    "  --decode-tokens 32768,131072,524288,1048576   cache lengths T\n"
    "  --decode-batch 1  sequences per call\n"
    "  --decode-splits 0 list partitions per (sequence, KV head); 0: sparse_decode's own choice\n"
    "  --copy-gbps 4240  the GPU's measured copy bandwidth the GB/s column is shared against (4240: H200)\n";

constexpr int64_t kSuffixTokens = 16;

// Allowed (query, key) pairs of the layout: per query, the keys the rule allows among the sink, every gist at
// or before it and its local window (every other key is never allowed), counted with the scalar rule.
double allowed_pairs(const GistLayout& layout) {
  double pairs = 0;
  std::vector<int64_t> gists;
  for (int64_t l = 0; l < layout.levels(); ++l)
    gists.insert(gists.end(), layout.gist_pos[l].begin(), layout.gist_pos[l].end());
  std::sort(gists.begin(), gists.end());
  for (int64_t q = 0; q < layout.size(); ++q) {
    const int64_t window = local_window_start(layout, q);
    for (int64_t k = window; k <= q; ++k) pairs += gist_mask_allowed(layout, q, k);
    for (int64_t k = 0; k < std::min(window, layout.options.sink); ++k) pairs += gist_mask_allowed(layout, q, k);
    if (layout.levels() == 1) {  // every earlier gist of the document is allowed (one document here)
      pairs += std::lower_bound(gists.begin(), gists.end(), window) -
               std::lower_bound(gists.begin(), gists.end(), layout.options.sink);
      continue;
    }
    for (int64_t g : gists) {
      if (g >= window) break;
      if (g >= layout.options.sink) pairs += gist_mask_allowed(layout, q, g);
    }
  }
  return pairs;
}

// Sparse decode: per T, B sequences of T cached rows, T / 16 sorted random rows listed per (sequence, KV head).
int bench_decode(Flags& flags, int64_t hq, int64_t hkv, int64_t d, at::ScalarType dtype, int64_t repeats) {
  const std::vector<int64_t> lengths = flags.get_int_list("decode-tokens", {32768, 131072, 524288, 1048576});
  const int64_t batch = flags.get_int("decode-batch", 1);
  const int64_t splits = flags.get_int("decode-splits", 0);
  const double copy_gbps = flags.get_double("copy-gbps", 4240.0);
  flags.finish();
  GSA_CHECK(batch >= 1, "gsa bench kernels: --decode-batch must be >= 1");
  GSA_CHECK(splits >= 0, "gsa bench kernels: --decode-splits must be >= 0");
  GSA_CHECK(copy_gbps > 0, "gsa bench kernels: --copy-gbps must be > 0");
  const auto opts = at::TensorOptions().dtype(dtype).device(at::kCUDA);
  std::printf("gsa bench kernels --decode: Hq %lld / Hkv %lld, D %lld, batch %lld, T/16 listed rows per KV head, "
              "splits %s\n", (long long)hq, (long long)hkv, (long long)d, (long long)batch,
              splits == 0 ? "auto" : std::to_string(splits).c_str());
  std::printf("%10s %10s %10s %12s %14s %8s\n", "T", "rows", "ms", "listed GB/s", "sequences/s", "copy%");
  for (int64_t T : lengths) {
    const int64_t rows = T / 16;
    at::Tensor q = at::randn({batch, hq, d}, opts), k = at::randn({batch, hkv, T, d}, opts);
    at::Tensor v = at::randn({batch, hkv, T, d}, opts);
    at::Tensor list = std::get<0>(at::rand({batch * hkv, T}, at::TensorOptions().device(at::kCUDA)).topk(rows, 1));
    list = std::get<0>(list.sort(1)).view({batch, hkv, rows}).to(at::kInt);
    const double scale = 1.0 / std::sqrt(static_cast<double>(d));
    const double ms = median_device_ms([&] { return sparse_decode(q, k, v, list, scale, splits).out; }, repeats);
    const double bytes = 2.0 * batch * hkv * rows * d * at::elementSize(dtype);
    std::printf("%10lld %10lld %10.4f %12.0f %14.0f %7.0f%%\n", (long long)T, (long long)rows, ms,
                bytes / ms * 1e-6, batch / ms * 1e3, 100.0 * bytes / ms * 1e-6 / copy_gbps);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int run_bench_kernels(const Args& args) {
  Flags flags(args, "bench kernels");
  if (flags.help()) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  const std::vector<int64_t> tokens = flags.get_int_list("tokens", {8192, 32768, 131072});
  const int64_t hq = flags.get_int("heads", 32), hkv = flags.get_int("kv-heads", 8), d = flags.get_int("head-dim", 128);
  const GistOptions gist = read_gist_flags(flags, /*chunk=*/16, /*levels=*/1);
  const std::string dtype_name = flags.get_string("dtype", "bf16");
  const int64_t repeats = flags.get_int("repeats", 10);
  const bool backward = !flags.get_bool("no-backward", false);
  const int64_t max_backward_tiles = flags.get_int("max-backward-tiles", kBackwardTilesBySize);
  const double peak_tflops = flags.get_double("peak-tflops", 989.0);
  GSA_CHECK(peak_tflops > 0, "gsa bench kernels: --peak-tflops must be > 0");
  if (flags.get_bool("decode", false)) {
    GSA_CHECK(at::hasCUDA(), "gsa bench kernels needs a CUDA device");
    return bench_decode(flags, hq, hkv, d, dtype_name == "fp16" ? at::kHalf : at::kBFloat16, repeats);
  }
  flags.finish();
  GSA_CHECK(dtype_name == "bf16" || dtype_name == "fp16", "gsa bench kernels: --dtype must be bf16 or fp16, not ",
            dtype_name);
  GSA_CHECK(at::hasCUDA(), "gsa bench kernels needs a CUDA device");
  GSA_CHECK(repeats >= 1 && hkv >= 1 && hq % hkv == 0, "gsa bench kernels: bad --repeats/--heads/--kv-heads");
  const auto opts = at::TensorOptions().dtype(dtype_name == "bf16" ? at::kBFloat16 : at::kHalf).device(at::kCUDA);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));

  std::printf("gsa bench kernels: %s, Hq %lld / Hkv %lld, D %lld, c0 %lld, levels %lld, sink %lld, N %lld\n",
              dtype_name.c_str(), (long long)hq, (long long)hkv, (long long)d, (long long)gist.chunk,
              (long long)gist.levels, (long long)gist.sink, (long long)gist.prev_chunks);
  std::printf("%10s %10s %9s %10s %10s %10s %12s %10s %8s %7s %7s %6s %7s\n", "N", "T", "plan_ms", "fwd_ms",
              "fwd_TF/s", "fwdbwd_ms", "fwdbwd_TF/s", "useful", "keys/q", "fwd%", "fb%", "item", "dS_MiB");
  for (int64_t n : tokens) {
    GSA_CHECK(n > kSuffixTokens + gist.sink, "gsa bench kernels: --tokens ", n, " too short");
    Document doc;
    for (int64_t i = 0; i < n - kSuffixTokens; ++i) doc.context.push_back(i % 251);
    for (int64_t i = 0; i < kSuffixTokens; ++i) doc.suffix.push_back(i % 251);
    const GistLayout layout = build_layout({doc}, gist);
    const int64_t T = layout.size();
    const auto plan_start = std::chrono::steady_clock::now();
    auto tiles =
        std::make_shared<const TilePlan>(make_tile_plan({&layout}, 0, -1, hq / hkv, at::kCUDA, max_backward_tiles));
    synchronize_on(tiles->token_meta.to(at::kFloat));
    const double plan_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - plan_start).count();
    const double pairs = allowed_pairs(layout);
    const double visited =
        static_cast<double>(tiles->num_forward_pairs) * kernels::kBlockRows * kernels::kTileKeys * hkv;
    const double fwd_flops = 4.0 * d * hq * pairs;

    at::Tensor q = at::randn({1, hq, T, d}, opts), k = at::randn({1, hkv, T, d}, opts);
    at::Tensor v = at::randn({1, hkv, T, d}, opts), grad = at::randn({1, hq, T, d}, opts);
    const double fwd_ms = median_device_ms([&] { return sparse_attention(q, k, v, tiles, false, false, scale).out; }, repeats);
    double fb_ms = 0;
    if (backward) {
      at::Tensor qg = q.clone().requires_grad_(), kg = k.clone().requires_grad_(), vg = v.clone().requires_grad_();
      fb_ms = median_device_ms(
          [&] {
            qg.mutable_grad() = at::Tensor();
            kg.mutable_grad() = at::Tensor();
            vg.mutable_grad() = at::Tensor();
            at::Tensor out = sparse_attention(qg, kg, vg, tiles, false, false, scale).out;
            out.backward(grad);
            return kg.grad();
          },
          repeats);
    }
    const double fwd_tflops = fwd_flops / fwd_ms * 1e-9, fb_tflops = backward ? 3.5 * fwd_flops / fb_ms * 1e-9 : 0.0;
    // fwd% and fb%: the useful TFLOP/s as a share of --peak-tflops; item: the query tiles a backward work item holds
    // at most (tile_plan.h; 0: a key tile's whole list); dS_MiB: the stored-dS workspace the plan would take
    // (sparse_attention.cpp: the default stores dS up to 2 GiB at head dim 128, 16 GiB at 64; GSA_SM90_DQ=2 at
    // any size).
    const double ds_mib = double(stored_ds_workspace_bytes(*tiles, hkv, q.element_size())) / double(1 << 20);
    std::printf("%10lld %10lld %9.1f %10.3f %10.1f %10.3f %12.1f %9.0f%% %8.0f %6.0f%% %6.0f%% %6lld %7.0f\n",
                (long long)n, (long long)T, plan_ms, fwd_ms, fwd_tflops, fb_ms, fb_tflops, 100.0 * pairs * hq / visited,
                pairs / T, 100.0 * fwd_tflops / peak_tflops, 100.0 * fb_tflops / peak_tflops,
                (long long)tiles->backward_item_tiles, ds_mib);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace gsa::cli
