// skinny_linear (runtime/skinny_gemm.h) against a float64 oracle computed independently with LibTorch, on CPU
// tensors (the CPU twin) and, with a device, CUDA tensors (the CUDA kernel; those cases skip without one):
//   oracle       at::mm of the inputs in kDouble (+ bias), rounded once to the dtype; kSiluMul: the gate and up
//                sums rounded, then silu_mul (decode_step_ops.h), or at::silu(g) * u where I is not a multiple of
//                8 (silu_mul's test shows the two equal bit for bit); float_out: that, widened to fp32;
//   CPU twin     within 1 ulp of the dtype of the oracle (both round a float64 sum; only the order of the float64
//                additions differs): M 1..8, N 1..1100 (not multiples of anything), K 8 .. 8192, bias, strided x
//                rows, leading dims, kSiluMul, float_out;
//   CUDA kernel  within 1 ulp + 2^-18 * sum_k |x[m, k] w[n, k]| (+ |bias[n]|) of the oracle and of the CPU twin (the
//                kernel sums in fp32: on an H200 its error beyond one ulp stayed under 2.3e-7 of that sum), within
//                1 ulp + 2^-11 * that sum of at::linear on CUDA (cuBLAS's own error is the larger); kSiluMul equals
//                silu_mul of the kernel's own kNone output bit for bit (the same sums); float_out equals the dtype
//                output widened; the shapes of a 1B Llama decode step (N 2048, 3072, 16384 gate/up, 128259 LM
//                head; K 2048, 8192) and odd ones; every split of K (1 .. 16) through the kernel's entry point;
//   graph        the CUDA kernel captured in a CUDA graph (DecodeStepGraph) and replayed with x updated in place;
//   bad inputs   throw gsa::Error naming the problem; skinny_gemm_valid rejects misaligned rows and bad sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <random>
#include <sstream>
#include <string>
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

using test::within_ulp;

// Times sum_k |x w|: the bound on the kernel's fp32 summation error, and a looser one for at::linear on CUDA
// (cuBLAS's error beyond one ulp reached 1.7e-4 of the sum at K = 1032 on an H200; ours stayed under 2.3e-7).
constexpr double kFp32SumSlack = 1.0 / (1 << 18);
constexpr double kCublasSumSlack = 1.0 / (1 << 11);

std::string dtype_name(at::ScalarType dtype) { return dtype == at::kBFloat16 ? "bf16" : "fp16"; }

struct Inputs {
  at::Tensor x;       // [..., K]
  at::Tensor weight;  // [N, K]
  std::optional<at::Tensor> bias;  // [N]
};

// Random inputs; strided: x rows are views into rows of K + 8 elements.
Inputs make_inputs(at::Device device, at::ScalarType dtype, std::vector<int64_t> lead, int64_t N, int64_t K,
                   bool bias, bool strided, uint64_t seed) {
  at::manual_seed(seed);
  const auto opts = at::TensorOptions().dtype(dtype).device(device);
  lead.push_back(strided ? K + 8 : K);
  Inputs in;
  in.x = at::randn(lead, opts).narrow(-1, 0, K);
  in.weight = at::randn({N, K}, opts);
  if (bias) in.bias = at::randn({N}, opts);
  return in;
}

// x's leading dims with `cols` last.
std::vector<int64_t> out_shape(const at::Tensor& x, int64_t cols) {
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = cols;
  return shape;
}

// The float64 oracle on the inputs' device: [..., N_out] in the dtype, or fp32 with float_out.
at::Tensor oracle(const Inputs& in, SkinnyEpilogue epilogue, bool float_out) {
  const at::ScalarType dtype = in.x.scalar_type();
  const int64_t K = in.x.size(-1), N = in.weight.size(0);
  at::Tensor acc = at::mm(in.x.reshape({-1, K}).to(at::kDouble), in.weight.to(at::kDouble).t());  // [M, N]
  if (in.bias) acc = acc + in.bias->to(at::kDouble);
  at::Tensor out = acc.to(dtype);  // [M, N]
  if (epilogue == SkinnyEpilogue::kSiluMul) {
    const int64_t I = N / 2;
    out = I % 8 == 0 ? silu_mul(out) : at::silu(out.narrow(1, 0, I)) * out.narrow(1, I, I);  // [M, I]
  }
  out = out.reshape(out_shape(in.x, out.size(1)));
  return float_out ? out.to(at::kFloat) : out;
}

// sum_k |x[m, k] w[n, k]| + |bias[n]| (float64, [..., N]): the scale of the kernel's fp32 summation error.
at::Tensor sum_magnitude(const Inputs& in) {
  const int64_t K = in.x.size(-1);
  at::Tensor mag = at::mm(in.x.reshape({-1, K}).to(at::kDouble).abs(), in.weight.to(at::kDouble).abs().t());
  if (in.bias) mag = mag + in.bias->to(at::kDouble).abs();
  return mag.reshape(out_shape(in.x, in.weight.size(0)));
}

// --------------------------------------------------------------------------------------------------- CPU twin

struct Case {
  std::vector<int64_t> lead;  // x's leading dims (at most 8 rows in all)
  int64_t n, k;
  bool bias, strided;
  SkinnyEpilogue epilogue;
  bool float_out;
};

void check_cpu_twin(at::ScalarType dtype, const Case& c, uint64_t seed) {
  SCOPED_TRACE(str_cat(dtype_name(dtype), " x ", at::IntArrayRef(c.lead), " N ", c.n, " K ", c.k, c.bias ? " bias" : "",
                       c.strided ? " strided" : "", c.epilogue == SkinnyEpilogue::kSiluMul ? " silu_mul" : "",
                       c.float_out ? " float_out" : ""));
  const Inputs in = make_inputs(at::kCPU, dtype, c.lead, c.n, c.k, c.bias, c.strided, seed);
  const at::Tensor got = skinny_linear(in.x, in.weight, in.bias, c.epilogue, c.float_out);
  EXPECT_EQ(got.scalar_type(), c.float_out ? at::kFloat : dtype);
  EXPECT_TRUE(within_ulp(got, oracle(in, c.epilogue, c.float_out), dtype));
}

TEST(SkinnyGemm, CpuTwinMatchesFloat64Oracle) {
  std::mt19937 rng(3);
  uint64_t seed = 0;
  auto rows = [&] { return 1 + static_cast<int64_t>(rng() % 8); };
  for (const at::ScalarType dtype : {at::kBFloat16, at::kHalf}) {
    for (const int64_t K : {8, 40, 264, 2048, 8192}) {  // random M and N (mostly odd), every K
      const int64_t N = 1 + static_cast<int64_t>(rng() % 1100);
      const bool bias = rng() % 2 == 0, strided = rng() % 2 == 0;
      check_cpu_twin(dtype, {{rows()}, N, K, bias, strided, SkinnyEpilogue::kNone, false}, ++seed);
    }
    check_cpu_twin(dtype, {{2, 3}, 37, 2048, true, false, SkinnyEpilogue::kNone, false}, ++seed);     // [B, T, K]
    check_cpu_twin(dtype, {{8}, 1003, 2048, false, true, SkinnyEpilogue::kNone, true}, ++seed);       // float_out
    check_cpu_twin(dtype, {{rows()}, 2 * 1032, 2048, false, false, SkinnyEpilogue::kSiluMul, false}, ++seed);
    check_cpu_twin(dtype, {{rows()}, 2 * 301, 520, true, true, SkinnyEpilogue::kSiluMul, false}, ++seed);
    check_cpu_twin(dtype, {{1}, 2 * 77, 8192, false, false, SkinnyEpilogue::kSiluMul, true}, ++seed);
  }
}

TEST(SkinnyGemm, NoRowsGiveAnEmptyOutput) {
  const at::Tensor out = skinny_linear(at::randn({0, 64}, at::kBFloat16), at::randn({24, 64}, at::kBFloat16));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{0, 24}));
}

// ----------------------------------------------------------------------------------------------- CUDA kernel

void check_cuda(at::ScalarType dtype, std::vector<int64_t> lead, int64_t N, int64_t K, bool bias, bool strided,
                uint64_t seed) {
  SCOPED_TRACE(str_cat("cuda ", dtype_name(dtype), " x ", at::IntArrayRef(lead), " N ", N, " K ", K,
                       bias ? " bias" : "", strided ? " strided" : ""));
  const Inputs in = make_inputs(at::Device(at::kCUDA, 0), dtype, lead, N, K, bias, strided, seed);
  const at::Tensor slack = sum_magnitude(in) * kFp32SumSlack;  // [..., N]
  const at::Tensor got = skinny_linear(in.x, in.weight, in.bias);
  EXPECT_TRUE(within_ulp(got, oracle(in, SkinnyEpilogue::kNone, false), dtype, slack)) << "vs the oracle";
  EXPECT_TRUE(within_ulp(got, at::linear(in.x, in.weight, in.bias), dtype,
                         sum_magnitude(in) * kCublasSumSlack))
      << "vs at::linear";
  if (N * K <= (int64_t{1} << 24)) {  // the CPU twin, where it is quick
    const at::Tensor twin = skinny_linear(in.x.cpu(), in.weight.cpu(), in.bias ? in.bias->cpu() : at::Tensor());
    EXPECT_TRUE(within_ulp(got, twin, dtype, slack)) << "vs the CPU twin";
  }
  EXPECT_TRUE(at::equal(skinny_linear(in.x, in.weight, in.bias, SkinnyEpilogue::kNone, true), got.to(at::kFloat)))
      << "float_out";
  // constant_weight: the kernel streams the weight while the kernel before it still runs (pdl.cuh) and reads x
  // after it; the same bits when that kernel writes x (an elementwise op, then the GEMM itself feeding itself).
  const at::Tensor doubled = in.x * 2;
  EXPECT_TRUE(at::equal(skinny_linear(doubled, in.weight, in.bias, SkinnyEpilogue::kNone, false, true),
                        skinny_linear(doubled, in.weight, in.bias)))
      << "constant_weight after an elementwise kernel";
  if (N == K) {
    const at::Tensor once = skinny_linear(in.x, in.weight, in.bias, SkinnyEpilogue::kNone, false, true);
    const at::Tensor twice = skinny_linear(once, in.weight, in.bias, SkinnyEpilogue::kNone, false, true);
    EXPECT_TRUE(at::equal(twice, skinny_linear(got, in.weight, in.bias))) << "constant_weight, GEMM after GEMM";
  }
  if (N % 2 == 0) {  // kSiluMul: the same sums as kNone's, then silu_mul
    const int64_t I = N / 2;
    const at::Tensor rows = got.reshape({-1, N});
    at::Tensor expected = I % 8 == 0 ? silu_mul(rows) : at::silu(rows.narrow(1, 0, I)) * rows.narrow(1, I, I);
    const at::Tensor silu = skinny_linear(in.x, in.weight, in.bias, SkinnyEpilogue::kSiluMul);
    EXPECT_TRUE(at::equal(silu, expected.reshape(out_shape(in.x, I)))) << "kSiluMul vs silu_mul of kNone";
  }
}

TEST(SkinnyGemm, CudaKernelMatchesOracleAndTwin) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  std::mt19937 rng(17);
  uint64_t seed = 1000;
  struct Shape {
    int64_t n, k;
  };
  // A 1B Llama step: q/k/v, o, gate/up, down (K 8192); odd shapes: partial tiles, K not a multiple of 32.
  const std::vector<Shape> shapes = {{3072, 2048}, {2048, 2048}, {16384, 2048}, {2048, 8192},
                                     {1003, 40},   {37, 8},      {4104, 520},   {302, 264}};
  for (const at::ScalarType dtype : {at::kBFloat16, at::kHalf}) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      const int64_t M = 1 + static_cast<int64_t>((i + rng() % 2) % 8);
      check_cuda(dtype, {M}, shapes[i].n, shapes[i].k, i % 2 == 0, i % 3 == 0, ++seed);
    }
    check_cuda(dtype, {8}, 2048, 2048, true, true, ++seed);      // every row of the mma tile
    check_cuda(dtype, {2, 1}, 16384, 2048, false, false, ++seed);  // [B, 1, K]
    for (const int64_t M : {1, 8}) check_cuda(dtype, {M}, 128259, 2048, false, false, ++seed);  // the LM head
  }
}

// Every split of K the kernel takes (split_k 1 .. 16; 16 runs CTAs of 16 warps), through the kernel's entry
// point on the default stream: each within the fp32 slack of the oracle, on the 1B Llama's o_proj and down_proj
// shapes and on partial tiles with K not a multiple of the warps' steps (warps of a split of 16 without steps).
TEST(SkinnyGemm, CudaKernelEverySplitMatchesOracle) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  struct Shape {
    int64_t m, n, k;
  };
  uint64_t seed = 3000;
  for (const Shape shape : {Shape{1, 2048, 2048}, Shape{3, 2048, 8192}, Shape{8, 1003, 264}}) {
    const Inputs in = make_inputs(at::Device(at::kCUDA, 0), at::kBFloat16, {shape.m}, shape.n, shape.k, false,
                                  false, ++seed);
    const at::Tensor expected = oracle(in, SkinnyEpilogue::kNone, false);
    const at::Tensor slack = sum_magnitude(in) * kFp32SumSlack;  // [M, N]
    for (const int split : {1, 2, 4, 8, 16}) {
      SCOPED_TRACE(str_cat("M ", shape.m, " N ", shape.n, " K ", shape.k, " split ", split));
      const at::Tensor out = at::empty({shape.m, shape.n}, in.x.options());  // [M, N]
      kernels::SkinnyGemmParams p;
      p.dtype = kernels::DType::kBFloat16;
      p.m = static_cast<int32_t>(shape.m);
      p.n = static_cast<int32_t>(shape.n);
      p.k = static_cast<int32_t>(shape.k);
      p.x = in.x.data_ptr();
      p.x_stride = in.x.stride(0);
      p.weight = in.weight.data_ptr();
      p.weight_stride = in.weight.stride(0);
      p.out = out.data_ptr();
      p.out_stride = shape.n;
      p.split_k = split;
      ASSERT_EQ(kernels::skinny_gemm_cuda(p, nullptr), kernels::Status::kOk);
      EXPECT_TRUE(within_ulp(out, expected, at::kBFloat16, slack));
    }
  }
}

// The kernel captured once and replayed with x written in place: the same bits as eager calls.
TEST(SkinnyGemm, CudaKernelReplaysInACudaGraph) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  const auto opts = at::TensorOptions().dtype(at::kBFloat16).device(at::kCUDA, 0);
  at::manual_seed(23);
  const at::Tensor x = at::empty({4, 2048}, opts);  // [M, K]
  const at::Tensor qkv = at::randn({3072, 2048}, opts), qkv_bias = at::randn({3072}, opts);
  const at::Tensor gate_up = at::randn({2 * 1032, 2048}, opts), head = at::randn({1000, 2048}, opts);
  auto step = [&] {
    return at::cat({skinny_linear(x, qkv, qkv_bias).flatten().to(at::kFloat),
                    skinny_linear(x, gate_up, {}, SkinnyEpilogue::kSiluMul).flatten().to(at::kFloat),
                    skinny_linear(x, head, {}, SkinnyEpilogue::kNone, true).flatten()});
  };
  DecodeStepGraph graph;
  for (int i = 0; i < 4; ++i) {
    x.normal_();
    const at::Tensor replayed = graph.run(step);
    EXPECT_TRUE(at::equal(replayed, step())) << "step " << i;
  }
  EXPECT_EQ(graph.captures(), 1);
}

// ------------------------------------------------------------------------------------------ sizes, bad inputs

TEST(SkinnyGemm, SupportedSizes) {
  EXPECT_TRUE(skinny_linear_supported(at::kBFloat16, 1, 2048));
  EXPECT_TRUE(skinny_linear_supported(at::kHalf, 8, 8192));
  EXPECT_TRUE(skinny_linear_supported(at::kBFloat16, 0, 8));
  EXPECT_FALSE(skinny_linear_supported(at::kFloat, 1, 2048));
  EXPECT_FALSE(skinny_linear_supported(at::kBFloat16, 9, 2048));
  EXPECT_FALSE(skinny_linear_supported(at::kBFloat16, 1, 2044));
  EXPECT_FALSE(skinny_linear_supported(at::kBFloat16, 1, 0));
}

TEST(SkinnyGemm, RejectsBadInputsByName) {
  const auto bf16 = at::TensorOptions().dtype(at::kBFloat16);
  const at::Tensor x = at::randn({2, 64}, bf16), w = at::randn({24, 64}, bf16);
  EXPECT_ERROR_MENTIONS(skinny_linear(x.to(at::kFloat), w.to(at::kFloat)), "bf16 or fp16");
  EXPECT_ERROR_MENTIONS(skinny_linear(x, w.to(at::kHalf)), "weight is Half");
  EXPECT_ERROR_MENTIONS(skinny_linear(x, at::randn({24, 72}, bf16)), "weight must be [N, K]");
  EXPECT_ERROR_MENTIONS(skinny_linear(at::randn({2, 12}, bf16), at::randn({24, 12}, bf16)), "multiple of 8");
  EXPECT_ERROR_MENTIONS(skinny_linear(at::randn({9, 64}, bf16), w), "at most 8 rows");
  EXPECT_ERROR_MENTIONS(skinny_linear(x, at::randn({23, 64}, bf16), {}, SkinnyEpilogue::kSiluMul), "2 I rows");
  EXPECT_ERROR_MENTIONS(skinny_linear(x, w, at::randn({23}, bf16)), "bias must be [N] = [24]");
  EXPECT_ERROR_MENTIONS(skinny_linear(x, w, at::randn({24}, at::kHalf)), "bias is Half");
}

// skinny_gemm_valid, through the CPU twin: misaligned rows, odd K, too many rows, a bad split are refused.
TEST(SkinnyGemm, KernelEntryPointsRejectInvalidParams) {
  alignas(16) static uint16_t x[8 * 72], w[24 * 72], out[8 * 24];  // zeros
  kernels::SkinnyGemmParams p;
  p.m = 2;
  p.n = 24;
  p.k = 64;
  p.x = x;
  p.x_stride = 72;
  p.weight = w;
  p.weight_stride = 72;
  p.out = out;
  p.out_stride = 24;
  EXPECT_EQ(kernels::skinny_gemm_reference(p), kernels::Status::kOk);
  auto with = [&](auto edit) {
    kernels::SkinnyGemmParams q = p;
    edit(q);
    return kernels::skinny_gemm_reference(q);
  };
  const auto invalid = kernels::Status::kInvalidArgument;
  EXPECT_EQ(with([](auto& q) { q.x = static_cast<const uint16_t*>(q.x) + 1; }), invalid);
  EXPECT_EQ(with([](auto& q) { q.weight_stride = 68; }), invalid);
  EXPECT_EQ(with([](auto& q) { q.k = 60; }), invalid);
  EXPECT_EQ(with([](auto& q) { q.m = 9; }), invalid);
  EXPECT_EQ(with([](auto& q) { q.split_k = 3; }), invalid);
  EXPECT_EQ(with([](auto& q) { q.out_stride = 20; }), invalid);
  EXPECT_EQ(with([](auto& q) {
              q.n = 23;
              q.epilogue = kernels::SkinnyEpilogue::kSiluMul;
            }),
            invalid);
}

}  // namespace
}  // namespace gsa
