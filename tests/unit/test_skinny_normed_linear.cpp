// skinny_normed_linear (runtime/skinny_gemm.h: the skinny GEMM with add_rms_norm fused in front) on CPU tensors
// (the CPU twins) and, with a device, CUDA tensors (the kernel's norm prologue; those cases skip without one):
//   oracle       LibTorch, independently: sum = x + add (one rounding), normed = at::rms_norm(sum) (within one ulp
//                of ours: its sum of squares runs in another order), then the float64 GEMM of normed, rounded once.
//                out within 1 ulp + 2^-18 sum_k |normed w| (the kernel's fp32 sum) + sum_k ulp(normed_k) |w[n, k]|
//                (each normed element may sit one ulp off) of it; sum equal to x + add bit for bit; without add,
//                sum is x itself;
//   kSiluMul     equal to silu_mul of the kNone output bit for bit (the same sums), float_out to kNone widened;
//   fusion       on CUDA, bit for bit add_rms_norm then skinny_linear (the design claim: the prologue sums the
//                squares in add_rms_norm_kernel's order), through the binding and through the kernel's entry point at
//                every split of K (1 .. 16, warps of a split of 16 without K steps included), M 1 .. 8, with and
//                without add; constant_weight after a kernel that writes x and add; a CUDA graph replay;
//   bad inputs   throw gsa::Error naming the problem (skinny_gemm_valid's norm checks: test_skinny_gemm.cpp).
#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gsa/kernels/skinny_gemm.h"
#include "gsa/runtime/decode_graph.h"
#include "gsa/runtime/decode_step_ops.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/skinny_gemm.h"
#include "common/error_of.h"
#include "common/tolerance.h"

namespace gsa {
namespace {

using test::ulp_of;
using test::within_ulp;

constexpr double kFp32SumSlack = 1.0 / (1 << 18);  // test_skinny_gemm.cpp's bound on the kernel's fp32 sum
constexpr double kEps = 1e-5;

struct Case {
  int64_t m, n, k;
  bool add, bias, strided;  // strided: x and add rows are views into rows of K + 8 elements
};

std::string describe(at::ScalarType dtype, const Case& c) {
  return str_cat(dtype == at::kBFloat16 ? "bf16" : "fp16", " M ", c.m, " N ", c.n, " K ", c.k, c.add ? " add" : "",
                 c.bias ? " bias" : "", c.strided ? " strided" : "");
}

struct Inputs {
  at::Tensor x, add, norm_weight, weight, bias;  // [M, K], [M, K] or undefined, [K], [N, K], [N] or undefined
};

Inputs make_inputs(at::Device device, at::ScalarType dtype, const Case& c, uint64_t seed) {
  at::manual_seed(seed);
  const auto opts = at::TensorOptions().dtype(dtype).device(device);
  const int64_t row = c.strided ? c.k + 8 : c.k;
  Inputs in;
  in.x = (at::randn({c.m, row}, opts) * 4).narrow(1, 0, c.k);  // the residual stream
  if (c.add) in.add = (at::randn({c.m, row}, opts) * 0.25).narrow(1, 0, c.k);
  in.norm_weight = 1 + 0.2 * at::randn({c.k}, opts);
  in.weight = at::randn({c.n, c.k}, opts) * 0.05;
  if (c.bias) in.bias = at::randn({c.n}, opts);
  return in;
}

std::optional<at::Tensor> bias_of(const Inputs& in) {
  return in.bias.defined() ? std::optional<at::Tensor>(in.bias) : std::nullopt;
}

// out (kNone) and sum against the LibTorch oracle (see the top).
void check_against_oracle(const Inputs& in, const std::pair<at::Tensor, at::Tensor>& got) {
  const at::ScalarType dtype = in.x.scalar_type();
  const at::Tensor sum = in.add.defined() ? in.x + in.add : in.x;                       // [M, K]
  const at::Tensor normed = at::rms_norm(sum, {in.x.size(1)}, in.norm_weight, kEps);    // [M, K]
  const at::Tensor w = in.weight.to(at::kDouble), normed64 = normed.to(at::kDouble);
  at::Tensor acc = at::mm(normed64, w.t());                                              // [M, N]
  at::Tensor magnitude = at::mm(normed64.abs(), w.abs().t());
  if (in.bias.defined()) {
    acc = acc + in.bias.to(at::kDouble);
    magnitude = magnitude + in.bias.to(at::kDouble).abs();
  }
  const at::Tensor slack = magnitude * kFp32SumSlack + at::mm(ulp_of(normed64, dtype), w.abs().t());
  EXPECT_TRUE(at::equal(got.first.cpu(), sum.cpu())) << "sum vs x + add";
  if (!in.add.defined()) {
    EXPECT_TRUE(got.first.is_same(in.x)) << "without add, sum is x";
  }
  EXPECT_TRUE(within_ulp(got.second, acc.to(dtype), dtype, slack)) << "out vs the oracle";
}

void check_case(at::Device device, at::ScalarType dtype, const Case& c, uint64_t seed) {
  SCOPED_TRACE(str_cat(device, " ", describe(dtype, c)));
  const Inputs in = make_inputs(device, dtype, c, seed);
  const auto got = skinny_normed_linear(in.x, in.add, in.norm_weight, kEps, in.weight, bias_of(in));
  check_against_oracle(in, got);
  EXPECT_TRUE(at::equal(skinny_normed_linear(in.x, in.add, in.norm_weight, kEps, in.weight, bias_of(in),
                                             SkinnyEpilogue::kNone, /*float_out=*/true)
                            .second,
                        got.second.to(at::kFloat)))
      << "float_out";
  if (c.n % 16 == 0) {  // kSiluMul: silu_mul (I a multiple of 8) of the same sums
    const auto silu = skinny_normed_linear(in.x, in.add, in.norm_weight, kEps, in.weight, bias_of(in),
                                           SkinnyEpilogue::kSiluMul);
    EXPECT_TRUE(at::equal(silu.second, silu_mul(got.second))) << "kSiluMul vs silu_mul of kNone";
  }
  if (!device.is_cuda()) return;
  // The fused kernel is add_rms_norm then the plain kernel, bit for bit (with add; without it, against a zero add,
  // which differs only in the sign of zero sums).
  const at::Tensor add = in.add.defined() ? in.add : at::zeros_like(in.x);
  const at::Tensor normed = add_rms_norm(in.x, add, in.norm_weight, kEps).second;
  EXPECT_TRUE(at::equal(got.second, skinny_linear(normed, in.weight, bias_of(in)))) << "vs add_rms_norm + GEMM";
  // constant_weight: the weights stream while the kernel before (which writes x and add) still runs.
  const at::Tensor x2 = in.x * 2, add2 = add * 2;
  EXPECT_TRUE(at::equal(skinny_normed_linear(x2, add2, in.norm_weight, kEps, in.weight, bias_of(in),
                                             SkinnyEpilogue::kNone, false, /*constant_weight=*/true)
                            .second,
                        skinny_normed_linear(x2, add2, in.norm_weight, kEps, in.weight, bias_of(in)).second))
      << "constant_weight after an elementwise kernel";
}

// M 1 .. 8; the 1B Llama's q/k/v and gate/up (K 2048), odd N and K (partial tiles, K not a multiple of 32),
// K 8192 (several words a norm thread; more than one virtual thread a real one on CUDA).
void check_cases(at::Device device) {
  std::mt19937 rng(29);
  uint64_t seed = 0;
  for (const at::ScalarType dtype : {at::kBFloat16, at::kHalf}) {
    const std::vector<Case> cases = {{1, 3072, 2048, true, true, false},  {8, 3072, 2048, true, false, true},
                                     {1, 16384, 2048, true, false, false}, {3, 1003, 520, false, true, true},
                                     {5, 304, 264, true, false, true},     {2, 37, 8, true, true, false},
                                     {2, 512, 8192, true, false, false},   {1, 96, 4104, false, false, true}};
    for (Case c : cases) {
      if (c.m > 1 && c.m < 8 && c.k <= 4104) c.m = 2 + static_cast<int64_t>(rng() % 6);  // within the stage
      check_case(device, dtype, c, ++seed);
    }
  }
}

TEST(SkinnyNormedLinear, MatchesOracleOnCpu) { check_cases(at::kCPU); }

TEST(SkinnyNormedLinear, MatchesOracleAndUnfusedKernelsOnCuda) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  check_cases(at::Device(at::kCUDA, 0));
}

// The kernel's entry point at every split of K: bit for bit add_rms_norm_cuda then skinny_gemm_cuda at the same
// split, and sum_out equal to add_rms_norm's sum. K = 264 (9 steps of 32) at splits 16 leaves warps without steps.
TEST(SkinnyNormedLinear, CudaKernelEverySplitEqualsUnfused) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  const at::Device device(at::kCUDA, 0);
  uint64_t seed = 500;
  for (const Case c : {Case{1, 2048, 2048, true, false, false}, Case{8, 1003, 264, true, false, true},
                       Case{3, 64, 4096, false, false, false}}) {
    const Inputs in = make_inputs(device, at::kBFloat16, c, ++seed);
    const at::Tensor add = in.add.defined() ? in.add : at::zeros_like(in.x);
    const auto [sum, normed] = add_rms_norm(in.x, add, in.norm_weight, kEps);
    for (const int split : {1, 2, 4, 8, 16}) {
      SCOPED_TRACE(str_cat(describe(at::kBFloat16, c), " split ", split));
      const at::Tensor out = at::empty({c.m, c.n}, in.x.options()), plain = at::empty_like(out);  // [M, N]
      const at::Tensor sum_out = at::empty({c.m, c.k}, in.x.options());                             // [M, K]
      kernels::SkinnyGemmParams p;
      p.m = static_cast<int32_t>(c.m);
      p.n = static_cast<int32_t>(c.n);
      p.k = static_cast<int32_t>(c.k);
      p.weight = in.weight.data_ptr();
      p.weight_stride = in.weight.stride(0);
      p.out_stride = c.n;
      p.split_k = split;
      kernels::SkinnyGemmParams fused = p;
      fused.x = in.x.data_ptr();
      fused.x_stride = in.x.stride(0);
      fused.out = out.data_ptr();
      fused.norm.add = in.add.defined() ? in.add.data_ptr() : nullptr;
      fused.norm.add_stride = in.add.defined() ? in.add.stride(0) : 0;
      fused.norm.weight = in.norm_weight.data_ptr();
      fused.norm.eps = static_cast<float>(kEps);
      fused.norm.sum_out = in.add.defined() ? sum_out.data_ptr() : nullptr;
      p.x = normed.data_ptr();
      p.x_stride = c.k;
      p.out = plain.data_ptr();
      ASSERT_EQ(kernels::skinny_gemm_cuda(fused, nullptr), kernels::Status::kOk);
      ASSERT_EQ(kernels::skinny_gemm_cuda(p, nullptr), kernels::Status::kOk);
      EXPECT_TRUE(at::equal(out, plain)) << "fused vs add_rms_norm + GEMM";
      if (in.add.defined()) {
        EXPECT_TRUE(at::equal(sum_out, sum)) << "sum_out";
      }
    }
  }
}

// Captured once and replayed with x and add written in place: the same bits as eager calls.
TEST(SkinnyNormedLinear, CudaKernelReplaysInACudaGraph) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  const Inputs in = make_inputs(at::Device(at::kCUDA, 0), at::kBFloat16, {4, 3072, 2048, true, true, false}, 41);
  const at::Tensor gate_up = at::randn({2 * 1032, 2048}, in.x.options()) * 0.05;
  auto step = [&] {
    const auto [sum, qkv] = skinny_normed_linear(in.x, in.add, in.norm_weight, kEps, in.weight, bias_of(in),
                                                 SkinnyEpilogue::kNone, false, true);
    const auto gated = skinny_normed_linear(sum, qkv.narrow(1, 0, 2048), in.norm_weight, kEps, gate_up, {},
                                            SkinnyEpilogue::kSiluMul, false, true);
    return at::cat({sum.flatten(), qkv.flatten(), gated.first.flatten(), gated.second.flatten()});
  };
  DecodeStepGraph graph;
  for (int i = 0; i < 4; ++i) {
    in.x.normal_();
    in.add.normal_();
    const at::Tensor replayed = graph.run(step);
    EXPECT_TRUE(at::equal(replayed, step())) << "step " << i;
  }
  EXPECT_EQ(graph.captures(), 1);
}

// ------------------------------------------------------------------------------------------ sizes, bad inputs

TEST(SkinnyNormedLinear, SupportedSizes) {
  EXPECT_TRUE(skinny_normed_linear_supported(at::kBFloat16, 1, 2048, true));
  EXPECT_TRUE(skinny_normed_linear_supported(at::kHalf, 8, 2048, true));  // 8 x 2 staged rows: 70 KB
  EXPECT_TRUE(skinny_normed_linear_supported(at::kBFloat16, 8, 4096, false));
  EXPECT_FALSE(skinny_normed_linear_supported(at::kBFloat16, 8, 4096, true));  // 140 KB of staged rows
  EXPECT_FALSE(skinny_normed_linear_supported(at::kBFloat16, 1, 16392, false));  // beyond add_rms_norm's H
  EXPECT_FALSE(skinny_normed_linear_supported(at::kFloat, 1, 2048, true));
  EXPECT_FALSE(skinny_normed_linear_supported(at::kBFloat16, 9, 2048, true));
}

TEST(SkinnyNormedLinear, RejectsBadInputsByName) {
  const auto bf16 = at::TensorOptions().dtype(at::kBFloat16);
  const at::Tensor x = at::randn({2, 64}, bf16), add = at::randn({2, 64}, bf16), nw = at::ones({64}, bf16);
  const at::Tensor w = at::randn({24, 64}, bf16);
  EXPECT_ERROR_MENTIONS(skinny_normed_linear(x, at::randn({3, 64}, bf16), nw, kEps, w), "add must have x's sizes");
  EXPECT_ERROR_MENTIONS(skinny_normed_linear(x, add.to(at::kHalf), nw, kEps, w), "add is Half");
  EXPECT_ERROR_MENTIONS(skinny_normed_linear(x, add, at::ones({72}, bf16), kEps, w), "norm_weight must be [K] = [64]");
  EXPECT_ERROR_MENTIONS(skinny_normed_linear(x, add, nw, -1.0, w), "eps must be >= 0");
  EXPECT_ERROR_MENTIONS(skinny_normed_linear(x, add, nw, kEps, at::randn({24, 72}, bf16)), "weight must be [N, K]");
  const at::Tensor wide = at::randn({8, 8192}, bf16);
  EXPECT_ERROR_MENTIONS(skinny_normed_linear(wide, wide, at::ones({8192}, bf16), kEps, at::randn({4, 8192}, bf16)),
                        "exceed the norm prologue's limits");
}

}  // namespace
}  // namespace gsa
