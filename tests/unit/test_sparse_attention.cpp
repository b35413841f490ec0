// The block-sparse attention path on the CPU (the kernels' float64 twin over the tile plan) and through
// gsa_attention with attention.backend = KERNELS, against the float64 dense oracle: 1-3 levels, sinks,
// prev_chunks 0-2, GQA 1/2/4/8, head dim 64/128, bf16/fp16, cpt and selective layers, packed documents, lengths
// not multiples of any tile. Tolerance: tolerance.h's relative-error bound per dtype.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>

#include "common/sparse_attention_check.h"
#include "common/tolerance.h"
#include "gsa/runtime/attention.h"
#include "gsa/runtime/attention_plan.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/gist_layout.h"
#include "gsa/runtime/sparse_attention.h"
#include "gsa/runtime/tile_plan.h"

namespace gsa {
namespace {

std::vector<test::SparseCase> cases() {
  std::vector<test::SparseCase> out;
  auto add = [&](int64_t levels, int64_t chunk, int64_t fanout, int64_t sink, int64_t prev, int64_t hq, int64_t hkv,
                 int64_t d, bool selective, bool keep, at::ScalarType dtype) {
    test::SparseCase c;
    c.levels = levels, c.chunk = chunk, c.fanout = fanout, c.sink = sink, c.prev = prev;
    c.hq = hq, c.hkv = hkv, c.head_dim = d, c.selective = selective, c.keep_gists = keep, c.dtype = dtype;
    out.push_back(c);
  };
  add(1, 4, 2, 3, 1, 4, 1, 64, false, false, at::kBFloat16);
  add(1, 3, 2, 0, 0, 2, 1, 64, true, false, at::kHalf);
  add(2, 2, 2, 1, 1, 8, 1, 64, false, false, at::kBFloat16);
  add(2, 3, 3, 2, 2, 1, 1, 128, true, true, at::kHalf);
  add(3, 2, 2, 3, 1, 4, 2, 64, true, false, at::kBFloat16);
  return out;
}

class SparseAttentionCpu : public ::testing::TestWithParam<int> {};

TEST_P(SparseAttentionCpu, TwinMatchesFloat64Oracle) {
  test::check_sparse_attention(cases()[GetParam()], at::kCPU, 500 + GetParam());
}

INSTANTIATE_TEST_SUITE_P(Cases, SparseAttentionCpu, ::testing::Range(0, static_cast<int>(cases().size())));

// Two rows of one document each (two gist levels, c0 3, c1 2, sink 2): context lengths `context` and
// `context + step`, `suffix` raw tokens after, random bytes from `seed`.
std::vector<GistLayout> two_level_rows(uint32_t seed, int context, int step, int suffix) {
  GistOptions o;
  o.levels = 2, o.chunk = 3, o.fanout = 2, o.sink = 2, o.prev_chunks = 1;
  std::mt19937 rng(seed);
  std::vector<GistLayout> rows;
  for (int b = 0; b < 2; ++b) {
    Document doc;
    for (int i = 0, n = context + b * step; i < n; ++i) doc.context.push_back(rng() % 256);
    for (int i = 0; i < suffix; ++i) doc.suffix.push_back(rng() % 256);
    rows.push_back(build_layout({doc}, o));
  }
  return rows;
}

// gsa_attention with backend KERNELS (the twin on CPU, the CUDA kernels on a GPU) equals the reference backend on
// the same bf16 inputs, outputs and gradients, in a cpt layer and in a selective layer (whose selected chunks come
// from the same selection code and merge with the kernels' result by log-sum-exp).
TEST(SparseAttentionBackend, KernelsEqualReferenceThroughGsaAttention) {
  const std::vector<GistLayout> rows = two_level_rows(7, 40, 17, 5);
  const int64_t T = std::max(rows[0].size(), rows[1].size()), D = 64;
  for (const at::Device device : test::test_devices()) {
    at::manual_seed(3);
    const auto bf16 = at::TensorOptions().dtype(at::kBFloat16).device(device);
    at::Tensor q = at::randn({2, 4, T, D}, bf16), k = at::randn({2, 2, T, D}, bf16), v = at::randn({2, 2, T, D}, bf16);
    for (bool selective : {false, true}) {
      AttentionOptions reference, kernels;
      reference.backend = AttentionBackend::kReference;
      kernels.backend = AttentionBackend::kKernels;
      const AttentionPlan ref_plan = make_attention_plan(row_pointers(rows), 0, -1, reference, device);
      const AttentionPlan ker_plan = make_attention_plan(row_pointers(rows), 0, -1, kernels, device);
      EXPECT_FALSE(ker_plan.band.defined()) << "KERNELS must not build the reference masks";
      const double scale = 1.0 / std::sqrt(double(D));
      // The reference path on the same bf16 tensors, so both select chunks from identical scores.
      at::Tensor qf = q.clone().requires_grad_(), kf = k.clone().requires_grad_(), vf = v.clone().requires_grad_();
      at::Tensor qb = q.clone().requires_grad_(), kb = k.clone().requires_grad_(), vb = v.clone().requires_grad_();
      at::Tensor want = gsa_attention(qf, kf, vf, ref_plan, selective, reference.selection, scale);
      at::Tensor got = gsa_attention(qb, kb, vb, ker_plan, selective, kernels.selection, scale);
      EXPECT_TRUE(test::relative_error_below(got, want, test::kBf16RelErr))
          << "selective " << selective << " on " << device;
      const at::Tensor w = at::randn(want.sizes(), want.options().dtype(at::kFloat));
      (want.to(at::kFloat) * w).sum().backward();
      (got.to(at::kFloat) * w).sum().backward();
      EXPECT_TRUE(test::relative_error_below(qb.grad(), qf.grad(), test::kBf16RelErr)) << "dq, selective " << selective;
      EXPECT_TRUE(test::relative_error_below(kb.grad(), kf.grad(), test::kBf16RelErr)) << "dk, selective " << selective;
      EXPECT_TRUE(test::relative_error_below(vb.grad(), vf.grad(), test::kBf16RelErr)) << "dv, selective " << selective;
    }
  }
}

// q, k, v as the model passes them: transposed views of [B, T, H, D] projections (strides not contiguous). The
// kernels read them through strides and write out / dq with q's, so the binding must give out, d_out and dq one
// layout; the reference backend on the same views is the oracle, outputs and gradients. In a selective layer the
// kernels' rows of the selective queries are merged with their selected part (merge_selected_rows).
TEST(SparseAttentionBackend, KernelsTakeTransposedViews) {
  const std::vector<GistLayout> rows = two_level_rows(5, 40, 11, 6);
  const int64_t T = std::max(rows[0].size(), rows[1].size()), D = 64;
  for (const at::Device device : test::test_devices()) {
    at::manual_seed(9);
    const auto bf16 = at::TensorOptions().dtype(at::kBFloat16).device(device);
    const at::Tensor q = at::randn({2, T, 4, D}, bf16).transpose(1, 2);
    const at::Tensor k = at::randn({2, T, 2, D}, bf16).transpose(1, 2), v = at::randn({2, T, 2, D}, bf16).transpose(1, 2);
    const at::Tensor w = at::randn({2, T, 4, D}, at::TensorOptions().device(device)).transpose(1, 2);
    for (bool selective : {false, true}) {
      std::vector<std::vector<at::Tensor>> results;
      for (AttentionBackend backend : {AttentionBackend::kReference, AttentionBackend::kKernels}) {
        AttentionOptions options;
        options.backend = backend;
        const AttentionPlan plan = make_attention_plan(row_pointers(rows), 0, -1, options, device);
        ASSERT_GT(plan.selection.count, 0);
        at::Tensor qg = q.detach().requires_grad_(), kg = k.detach().requires_grad_(),
                   vg = v.detach().requires_grad_();
        const at::Tensor out =
            gsa_attention(qg, kg, vg, plan, selective, options.selection, 1.0 / std::sqrt(double(D)));
        (out.to(at::kFloat) * w).sum().backward();  // d_out = w: a transposed view too
        results.push_back({out.detach(), qg.grad(), kg.grad(), vg.grad()});
      }
      const char* names[] = {"out", "dq", "dk", "dv"};
      for (int i = 0; i < 4; ++i) {
        EXPECT_TRUE(test::relative_error_below(results[1][i], results[0][i], test::kBf16RelErr))
            << names[i] << " on " << device << ", selective " << selective;
      }
    }
  }
}

// A partial key view (sequence parallelism: a rank holds some positions, in its own row order): the kernels
// (twin on CPU, CUDA on a GPU) over the held keys equal the reference path over the same view, outputs, lse,
// gradients and the selected keys left for their owners (remote), in cpt and selective layers.
TEST(SparseAttentionBackend, PartialKeyViewMatchesReference) {
  const std::vector<GistLayout> rows = two_level_rows(11, 50, 13, 4);
  const int64_t T = std::max(rows[0].size(), rows[1].size()), D = 64;
  // The view holds every position except those = 1 mod 3, in reversed order: column c holds held[S - 1 - c].
  std::vector<int64_t> held;
  for (int64_t t = 0; t < T; ++t)
    if (t % 3 != 1) held.push_back(t);
  const int64_t S = static_cast<int64_t>(held.size());
  at::Tensor slot = at::full({2, T}, -1, at::kLong);
  for (int64_t c = 0; c < S; ++c) slot.select(1, held[S - 1 - c]).fill_(c);
  for (const at::Device device : test::test_devices()) {
    at::manual_seed(5);
    const auto bf16 = at::TensorOptions().dtype(at::kBFloat16).device(device);
    const at::Tensor q = at::randn({2, 4, T, D}, bf16), k = at::randn({2, 2, S, D}, bf16),
                     v = at::randn({2, 2, S, D}, bf16);
    const at::Tensor full_k = at::randn({2, 2, T, D}, bf16);  // selection reads every gist (the replicated tree)
    const at::Tensor w = at::randn({2, 4, T, D}, at::TensorOptions().device(device));
    for (bool selective : {false, true}) {
      std::vector<std::vector<at::Tensor>> results;
      for (AttentionBackend backend : {AttentionBackend::kReference, AttentionBackend::kKernels}) {
        AttentionOptions options;
        options.backend = backend;
        const AttentionPlan plan = make_attention_plan(row_pointers(rows), 0, -1, options, device);
        at::Tensor qg = q.clone().requires_grad_(), kg = k.clone().requires_grad_(), vg = v.clone().requires_grad_();
        const KeyView view{kg, vg, slot.to(device)}, all{full_k, full_k, {}};
        RemoteSelection remote;
        const PartialAttention out = gsa_attention_partial(qg, view, plan, selective, options.selection,
                                                           1.0 / std::sqrt(double(D)), &all, &remote);
        const at::Tensor lse = out.lse.narrow(2, 0, T), finite = at::isfinite(lse);
        ((out.out.narrow(2, 0, T) * w).sum() + lse.masked_fill(finite.logical_not(), 0).sum()).backward();
        results.push_back({out.out.narrow(2, 0, T).detach(), lse.masked_fill(finite.logical_not(), 0).detach(), finite,
                           qg.grad(), kg.grad(), vg.grad(),
                           remote.q.defined() ? remote.q.detach().to(at::kFloat) : at::zeros({1}),
                           remote.key_pos.defined() ? std::get<0>(remote.key_pos.sort(-1)) : at::zeros({1})});
      }
      const char* names[] = {"out", "lse", "finite", "dq", "dk", "dv", "remote q", "remote key positions"};
      for (size_t i = 0; i < results[0].size(); ++i) {
        if (i == 2 || i == 7) {
          EXPECT_TRUE(at::equal(results[0][i].cpu(), results[1][i].cpu())) << names[i] << ", selective " << selective;
        } else {
          EXPECT_TRUE(test::relative_error_below(results[1][i], results[0][i], test::kBf16RelErr))
              << names[i] << ", selective " << selective << " on " << device;
        }
      }
    }
  }
}

// attention.deterministic: one backward work item per key tile (no atomic adds), and bitwise equal gradients from
// two runs (on a GPU the default split items accumulate with atomics in arbitrary order).
TEST(SparseAttentionBackend, DeterministicBackwardIsBitwiseReproducible) {
  GistOptions o;
  o.chunk = 2, o.sink = 1;
  Document doc;
  for (int i = 0; i < 900; ++i) doc.context.push_back(i % 251);  // long gist-key lists: several items per key tile
  const GistLayout row = build_layout({doc}, o);
  const std::shared_ptr<const TilePlan> split =
      std::make_shared<const TilePlan>(make_tile_plan({&row}, 0, -1, 4, at::kCPU, 2));
  const std::shared_ptr<const TilePlan> whole =
      std::make_shared<const TilePlan>(make_tile_plan({&row}, 0, -1, 4, at::kCPU, 0));
  EXPECT_GT(split->backward.shared.sum().item<int64_t>(), 0) << "the split plan must share key tiles";
  EXPECT_EQ(whole->backward.shared.sum().item<int64_t>(), 0);
  EXPECT_EQ(whole->backward.key_tiles.numel(), std::get<0>(at::_unique(whole->backward.key_tiles)).numel())
      << "one item per key tile";
  for (const at::Device device : test::test_devices()) {
    AttentionOptions options;
    options.backend = AttentionBackend::kKernels;
    options.deterministic = true;
    const AttentionPlan plan = make_attention_plan({&row}, 0, -1, options, device);
    at::manual_seed(9);
    const auto bf16 = at::TensorOptions().dtype(at::kBFloat16).device(device);
    const at::Tensor q = at::randn({1, 4, row.size(), 64}, bf16), k = at::randn({1, 1, row.size(), 64}, bf16);
    std::vector<at::Tensor> grads;
    for (int run = 0; run < 2; ++run) {
      at::Tensor kg = k.clone().requires_grad_(), vg = k.clone().requires_grad_();
      gsa_attention(q, kg, vg, plan, false, options.selection, 0.125).to(at::kFloat).sum().backward();
      grads.push_back(kg.grad());
      grads.push_back(vg.grad());
    }
    EXPECT_TRUE(at::equal(grads[0], grads[2]) && at::equal(grads[1], grads[3])) << "on " << device;
  }
}

// A tile plan built for inference (no backward lists) refuses a backward instead of returning zero dk/dv; plans
// that an attention plan builds with gradients on have the lists.
TEST(SparseAttentionBackend, BackwardNeedsThePlansBackwardLists) {
  const std::vector<GistLayout> rows = two_level_rows(3, 30, 0, 2);
  auto inference = std::make_shared<const TilePlan>(make_tile_plan(row_pointers(rows), 0, -1, 4, at::kCPU, 64, false));
  EXPECT_FALSE(inference->has_backward);
  EXPECT_EQ(inference->backward.key_tiles.numel(), 0);
  EXPECT_FALSE(inference->has_padding) << "two rows of equal length";
  const int64_t T = rows[0].size();
  at::Tensor q = at::randn({2, 4, T, 64}).to(at::kBFloat16).requires_grad_();
  at::Tensor k = at::randn({2, 1, T, 64}).to(at::kBFloat16);
  const SparseAttentionOutput s = sparse_attention(q, k, k, inference, false, false, 0.125);
  try {
    s.out.to(at::kFloat).sum().backward();
    FAIL() << "backward over a plan without backward lists must fail";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("without backward lists"), std::string::npos) << e.what();
  }
  AttentionOptions kernels;
  kernels.backend = AttentionBackend::kKernels;
  const AttentionPlan plan = make_attention_plan(row_pointers(rows), 0, -1, kernels, at::kCPU);
  {
    at::NoGradGuard no_grad;
    EXPECT_FALSE(plan.tiles->get(4)->has_backward);
  }
  EXPECT_TRUE(plan.tiles->get(4)->has_backward) << "rebuilt once gradients are recorded";
}

TEST(SparseAttentionBackend, KernelsRejectUnsupportedInputsByName) {
  GistOptions o;
  Document doc;
  for (int i = 0; i < 20; ++i) doc.context.push_back(i);
  const GistLayout row = build_layout({doc}, o);
  AttentionOptions kernels;
  kernels.backend = AttentionBackend::kKernels;
  const AttentionPlan plan = make_attention_plan({&row}, 0, -1, kernels, at::kCPU);
  at::Tensor q = at::randn({1, 4, row.size(), 64}), k = at::randn({1, 1, row.size(), 64});
  try {
    gsa_attention(q, k, k, plan, false, kernels.selection, 0.125);
    FAIL() << "fp32 inputs must be rejected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bf16 or fp16"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace gsa
