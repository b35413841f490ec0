// selected_attention (the selective queries' attention over their own key lists, forward on the sparse decode
// kernels, backward on selected_attention_backward) against a float64 oracle: softmax over the gathered rows,
// autograd through LibTorch ops; out, lse and the gradients of q, k and v for a loss that uses both out and lse
// (the merge by log-sum-exp does). Lists share rows across queries (the atomic accumulation) and hold -1 gaps.
// CPU twins everywhere, the CUDA kernels where a GPU is present.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "common/tolerance.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/selected_attention.h"

namespace gsa {
namespace {

struct Shape {
  int64_t n, hq, hkv, d, b, s, r;
  bool one_head_per_query = false;  // an unfold-routing owner's items: heads[n] names the query's one KV head
};

// out_bound: the relative error allowed on out (the SIMT kernel and the CPU twin sum in fp32 or float64; the
// tensor-core kernel rounds P to the input dtype before P V, as FlashAttention does).
void check_against_float64(const Shape& c, at::Device device, double out_bound) {
  at::manual_seed(c.n * 31 + c.hq + c.d);
  SCOPED_TRACE(::testing::Message() << "N " << c.n << " Hq " << c.hq << " Hkv " << c.hkv << " D " << c.d
                                    << (c.one_head_per_query ? " one head per query" : ""));
  const auto bf16 = at::TensorOptions().dtype(at::kBFloat16).device(device);
  const at::Tensor q = at::randn({c.n, c.hq, c.d}, bf16), k = at::randn({c.b, c.hkv, c.s, c.d}, bf16);
  const at::Tensor v = at::randn({c.b, c.hkv, c.s, c.d}, bf16);
  const at::Tensor rows = at::randint(0, c.b, {c.n}, at::kLong);  // [N]
  // Rows from a narrow window (many queries share them), a quarter of the entries -1; one list all -1.
  const int64_t groups = c.one_head_per_query ? 1 : c.hkv;  // KV heads per query
  const at::Tensor heads = c.one_head_per_query ? at::randint(0, c.hkv, {c.n}, at::kLong) : at::Tensor();
  at::Tensor key_rows = at::randint((c.s - c.r) / 2, (c.s + c.r) / 2, {c.n, groups, c.r}, at::kLong);
  key_rows = key_rows.masked_fill(at::rand({c.n, groups, c.r}) < 0.25, -1);
  if (c.n > 0) key_rows[0][0].fill_(-1);
  const double scale = 1.0 / std::sqrt(double(c.d));
  const at::Tensor w_out = at::randn({c.n, c.hq, c.d}, at::kDouble), w_lse = at::randn({c.n, c.hq}, at::kDouble);

  at::Tensor qg = q.clone().requires_grad_(), kg = k.clone().requires_grad_(), vg = v.clone().requires_grad_();
  const PartialAttention got = selected_attention(qg, kg, vg, rows.to(device), key_rows.to(device), scale,
                                                  heads.defined() ? heads.to(device) : at::Tensor());
  const at::Tensor finite = at::isfinite(got.lse.cpu());
  ((got.out.cpu().to(at::kDouble) * w_out).sum() +
   (got.lse.cpu().to(at::kDouble).masked_fill(finite.logical_not(), 0) * w_lse).sum())
      .backward();

  // Oracle: float64 gather + masked softmax.
  at::Tensor q64 = q.cpu().to(at::kDouble).requires_grad_(), k64 = k.cpu().to(at::kDouble).requires_grad_();
  at::Tensor v64 = v.cpu().to(at::kDouble).requires_grad_();
  const int64_t g = c.hq / groups;
  const at::Tensor held = key_rows >= 0, col = key_rows.clamp_min(0);  // [N, G, R]
  const at::Tensor b_idx = rows.view({c.n, 1, 1});
  const at::Tensor h_idx = heads.defined() ? heads.view({c.n, 1, 1}) : at::arange(c.hkv).view({1, c.hkv, 1});
  const at::Tensor keys = k64.index({b_idx, h_idx, col}), values = v64.index({b_idx, h_idx, col});  // [N, G, R, D]
  at::Tensor scores = at::matmul(q64.view({c.n, groups, g, c.d}), keys.transpose(-1, -2)) * scale;  // [N, G, g, R]
  scores = scores.masked_fill(held.view({c.n, groups, 1, c.r}).logical_not(), -std::numeric_limits<double>::infinity());
  const at::Tensor lse = at::logsumexp(scores, -1);  // [N, G, g]
  const at::Tensor lse_safe = lse.masked_fill(at::isinf(lse), 0);
  const at::Tensor p = (scores - lse_safe.unsqueeze(-1)).exp();
  const at::Tensor out = at::matmul(p, values).reshape({c.n, c.hq, c.d});
  const at::Tensor lse_flat = lse.reshape({c.n, c.hq});
  const at::Tensor want_finite = at::isfinite(lse_flat);
  ((out * w_out).sum() + (lse_safe.reshape({c.n, c.hq}) * w_lse).sum()).backward();

  ASSERT_TRUE(at::equal(finite, want_finite)) << "empty lists";
  if (c.n > 0) {
    EXPECT_FALSE(finite[0][0].item<bool>());  // the all -1 list
  }
  EXPECT_TRUE(test::relative_error_below(got.out, out.detach(), out_bound)) << "out on " << device;
  EXPECT_TRUE(test::relative_error_below(got.lse.cpu().masked_fill(finite.logical_not(), 0),
                                         lse_flat.detach().masked_fill(want_finite.logical_not(), 0), 1e-5))
      << "lse on " << device;
  // Gradients come back in bf16: one rounding of an fp32 sum.
  EXPECT_TRUE(test::relative_error_below(qg.grad(), q64.grad(), 1e-2)) << "dq on " << device;
  EXPECT_TRUE(test::relative_error_below(kg.grad(), k64.grad(), 1e-2)) << "dk on " << device;
  EXPECT_TRUE(test::relative_error_below(vg.grad(), v64.grad(), 1e-2)) << "dv on " << device;
}

TEST(SelectedAttention, EqualsFloat64GatherAttention) {
  const Shape shapes[] = {
      {6, 4, 2, 64, 2, 40, 24},        // G 2, D 64
      {5, 8, 2, 128, 1, 70, 50},       // G 4, D 128
      {4, 8, 1, 64, 3, 33, 17},        // G 8
      {3, 2, 2, 64, 2, 600, 300},      // G 1, lists long enough for several splits on CUDA
      {7, 4, 3, 64, 2, 50, 20, true},  // one KV head per query (of 3), 4 query heads on it
      {0, 4, 2, 64, 1, 30, 10},        // no query at all
  };
  for (const at::Device device : test::test_devices()) {
    if (!device.is_cuda()) {
      for (const Shape& c : shapes) check_against_float64(c, device, 1e-5);
      continue;
    }
    for (const char* kernel : {"simt", "mma"}) {  // both forward kernels (sparse_decode.h), whatever the default
      SCOPED_TRACE(std::string("GSA_DECODE_KERNEL=") + kernel);
      setenv("GSA_DECODE_KERNEL", kernel, 1);
      for (const Shape& c : shapes) check_against_float64(c, device, kernel[0] == 'm' ? 1e-2 : 1e-5);
    }
    unsetenv("GSA_DECODE_KERNEL");
  }
}

TEST(SelectedAttention, RejectsWhatTheKernelsCannotRun) {
  const at::Tensor rows = at::zeros({2}, at::kLong), key_rows = at::zeros({2, 1, 3}, at::kLong);
  const at::Tensor k = at::zeros({1, 1, 8, 64}, at::kBFloat16);
  EXPECT_NE(selected_attention_unsupported(at::zeros({2, 2, 64}), k, k), "");                 // fp32 q
  EXPECT_NE(selected_attention_unsupported(at::zeros({2, 3, 64}, at::kBFloat16), k, k), "");  // 3 heads per kv
  EXPECT_EQ(selected_attention_unsupported(at::zeros({2, 2, 64}, at::kBFloat16), k, k), "");
  EXPECT_THROW(
      selected_attention(at::zeros({2, 2, 64}, at::kBFloat16), k, k, rows, at::full({2, 1, 3}, 8, at::kLong), 1.0),
      Error);  // key row 8 of 8
  EXPECT_THROW(selected_attention(at::zeros({2, 2, 64}, at::kBFloat16), k, k, at::ones({2}, at::kLong), key_rows, 1.0),
               Error);  // batch row 1 of 1
}

}  // namespace
}  // namespace gsa
