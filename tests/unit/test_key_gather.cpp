// gather_key_rows against LibTorch's advanced indexing in float64 (the oracle), forward and gradient, with
// heavily duplicated indices (many queries selecting the same keys), on the CPU and, where present, CUDA.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "gsa/runtime/error.h"
#include "gsa/runtime/key_gather.h"

namespace gsa {
namespace {

void check_against_indexing(at::Device device, at::ScalarType dtype, double tolerance) {
  at::manual_seed(3);
  const auto longs = at::TensorOptions().dtype(at::kLong).device(device);
  const at::Tensor x64 = at::randn({2, 3, 50, 16}, at::kDouble);  // [B, H, T, D]
  // 40 queries per row, each 12 keys from a 10-key window: every key is selected many times over.
  const at::Tensor rows = at::arange(2, longs).view({2, 1, 1, 1});          // [B, 1, 1, 1]
  const at::Tensor heads = at::arange(3, longs).view({1, 3, 1, 1});         // [1, H, 1, 1]
  const at::Tensor positions = at::randint(20, 30, {2, 1, 40, 12}, longs);  // [B, 1, Q, R]
  const at::Tensor weight = at::randn({2, 3, 40, 12, 16}, at::kDouble);     // d loss / d gathered

  at::Tensor x = x64.to(dtype).to(device).clone().set_requires_grad(true);
  const at::Tensor got = gather_key_rows(x, rows, heads, positions);  // [B, H, Q, R, D]
  (got.to(at::kDouble) * weight.to(device)).sum().backward();

  at::Tensor ref_x = x64.clone().set_requires_grad(true);  // x64 itself never requires a gradient
  const at::Tensor want = ref_x.index({rows.cpu(), heads.cpu(), positions.cpu()});
  (want * weight).sum().backward();

  ASSERT_EQ(got.sizes(), want.sizes());
  EXPECT_LE((got.cpu().to(at::kDouble) - want).abs().max().item<double>(), tolerance * want.abs().max().item<double>());
  const at::Tensor grad = x.grad().cpu().to(at::kDouble), ref = ref_x.grad();
  EXPECT_LE((grad - ref).abs().max().item<double>(), tolerance * ref.abs().max().item<double>())
      << "gradient of duplicated rows";
}

TEST(KeyGather, EqualsIndexingOnTheCpu) { check_against_indexing(at::kCPU, at::kDouble, 1e-12); }

TEST(KeyGather, Bf16GradientIsRoundedOnceOnTheCpu) {
  // Up to ~50 additions per key: one final bf16 rounding keeps the relative error at bf16's epsilon.
  check_against_indexing(at::kCPU, at::kBFloat16, 1e-2);
}

TEST(KeyGather, EqualsIndexingOnCuda) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  check_against_indexing(at::kCUDA, at::kFloat, 1e-5);
  check_against_indexing(at::kCUDA, at::kBFloat16, 1e-2);
}

TEST(KeyGather, RejectsAnIndexOutsideX) {
  const at::Tensor x = at::zeros({1, 2, 5, 4});
  EXPECT_THROW(gather_key_rows(x, at::zeros({1}, at::kLong), at::zeros({1}, at::kLong), at::full({1}, 5, at::kLong)),
               Error);
  EXPECT_THROW(gather_key_rows(at::zeros({2, 5, 4}), at::zeros({1}, at::kLong), at::zeros({1}, at::kLong),
                               at::zeros({1}, at::kLong)),
               Error);
}

}  // namespace
}  // namespace gsa
