// lse_merge on CUDA: the kernel (through the binding and through its raw entry point) against the CPU reference
// twin, relative tolerance 1e-5. Skips itself without a CUDA device.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <tuple>

#include <ATen/ATen.h>

#include "gsa/kernels/lse_merge.h"
#include "gsa/runtime/lse_merge.h"

namespace gsa {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kRtol = 1e-5;
constexpr double kAtol = 1e-6;  // floor for outputs that cancel to ~0

bool have_cuda_device() { return at::hasCUDA() && at::getNumGPUs() > 0; }

// parts_out [P, R, D], parts_lse [P, R] on the CPU, float32; about a quarter of the parts empty (-inf, output
// NaN, never to be read) and rows r % 7 == 3 empty in every part.
std::pair<at::Tensor, at::Tensor> make_inputs(int64_t P, int64_t R, int64_t D, uint64_t seed) {
  at::manual_seed(seed);
  at::Tensor lse = at::randn({P, R}) * 4.0;    // [P, R]
  at::Tensor empty = at::rand({P, R}) < 0.25;  // [P, R]
  empty.index_put_({at::indexing::Slice(), at::indexing::Slice(3, at::indexing::None, 7)}, true);
  lse.masked_fill_(empty, -kInf);
  at::Tensor out = at::randn({P, R, D});  // [P, R, D]
  out.masked_fill_(empty.unsqueeze(-1), kNaN);
  return {out, lse};
}

// Compares on the CPU: -inf must match exactly, everything else |got - want| <= kAtol + kRtol * |want|.
// Prints the first 10 mismatches with their flat indices.
void expect_close(const at::Tensor& got_any, const at::Tensor& want_any, const char* what) {
  ASSERT_EQ(got_any.sizes(), want_any.sizes()) << what;
  const at::Tensor got = got_any.cpu().to(at::kDouble).contiguous().flatten();
  const at::Tensor want = want_any.cpu().to(at::kDouble).contiguous().flatten();
  const double* g = got.data_ptr<double>();
  const double* w = want.data_ptr<double>();
  int64_t bad = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const bool ok = std::isinf(w[i]) ? g[i] == w[i] : std::abs(g[i] - w[i]) <= kAtol + kRtol * std::abs(w[i]);
    if (!ok && bad++ < 10) ADD_FAILURE() << what << "[" << i << "]: got " << g[i] << ", want " << w[i];
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << got.numel() << " elements out of tolerance";
}

void check_against_twin(int64_t P, int64_t R, int64_t D, uint64_t seed) {
  const auto [parts_out, parts_lse] = make_inputs(P, R, D, seed);
  const auto [want_out, want_lse] = lse_merge(parts_out, parts_lse);  // CPU tensors: the reference twin
  const at::Device cuda(at::kCUDA, 0);
  const auto [out, lse] = lse_merge(parts_out.to(cuda), parts_lse.to(cuda));
  EXPECT_TRUE(out.is_cuda());
  EXPECT_EQ(out.sizes(), (at::IntArrayRef{R, D}));
  EXPECT_EQ(lse.sizes(), (at::IntArrayRef{R}));
  expect_close(out, want_out, "out");
  expect_close(lse, want_lse, "lse");
}

class LseMergeGpu : public ::testing::TestWithParam<std::tuple<int64_t, int64_t>> {
 protected:
  void SetUp() override {
    if (!have_cuda_device()) GTEST_SKIP() << "no CUDA device";
  }
};

TEST_P(LseMergeGpu, BindingMatchesReferenceTwin) {
  const auto [P, D] = GetParam();
  check_against_twin(P, 301, D, 17 + P * 100 + D);
}

// D values cover the float4 path (multiples of 4) and the scalar path (odd D), and D > 32 * 4 (several chunks).
INSTANTIATE_TEST_SUITE_P(PartsAndDims, LseMergeGpu,
                         ::testing::Combine(::testing::Values<int64_t>(1, 2, 5, 40),
                                            ::testing::Values<int64_t>(1, 16, 33, 128, 260)),
                         [](const auto& info) {
                           return "P" + std::to_string(std::get<0>(info.param)) + "_D" +
                                  std::to_string(std::get<1>(info.param));
                         });

TEST(LseMergeGpuLarge, R65536P4D128) {
  if (!have_cuda_device()) GTEST_SKIP() << "no CUDA device";
  check_against_twin(4, 65536, 128, 4242);
}

TEST(LseMergeGpuRaw, KernelWritesEveryElementOfPoisonedOutputs) {
  if (!have_cuda_device()) GTEST_SKIP() << "no CUDA device";
  const int64_t P = 3, R = 1000, D = 64;
  const auto [parts_out, parts_lse] = make_inputs(P, R, D, 99);
  const auto [want_out, want_lse] = lse_merge(parts_out, parts_lse);
  const at::Device cuda(at::kCUDA, 0);
  const at::Tensor d_out_in = parts_out.to(cuda);                                   // [P, R, D]
  const at::Tensor d_lse_in = parts_lse.to(cuda);                                   // [P, R]
  at::Tensor out = at::full({R, D}, kNaN, at::TensorOptions().device(cuda));        // [R, D] poisoned
  at::Tensor lse = at::full({R}, kNaN, at::TensorOptions().device(cuda));           // [R] poisoned
  kernels::LseMergeParams params;
  params.partial_out = d_out_in.data_ptr<float>();
  params.partial_lse = d_lse_in.data_ptr<float>();
  params.out = out.data_ptr<float>();
  params.lse = lse.data_ptr<float>();
  params.num_parts = P;
  params.rows = R;
  params.dim = D;
  // The legacy default stream (nullptr) orders after the fills above, which ran on LibTorch's default stream.
  ASSERT_EQ(kernels::lse_merge_cuda(params, nullptr), kernels::Status::kOk);
  EXPECT_FALSE(at::isnan(out).any().item<bool>()) << "an output element was not written";
  EXPECT_FALSE(at::isnan(lse).any().item<bool>()) << "an lse element was not written";
  expect_close(out, want_out, "out");
  expect_close(lse, want_lse, "lse");
}

}  // namespace
}  // namespace gsa
