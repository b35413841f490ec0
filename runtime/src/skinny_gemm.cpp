// LibTorch binding of the skinny GEMM: validate -> 16-byte-readable rows -> output -> params -> run_kernel (CUDA
// kernel on the current stream, or the CPU twin).
#include "gsa/runtime/skinny_gemm.h"

#include <limits>
#include <vector>

#include <ATen/core/grad_mode.h>  // NoGradGuard

#include "gsa/runtime/error.h"
#include "kernel_tensors.h"

namespace gsa {
namespace {

constexpr int64_t kMaxK = int64_t{1} << 30;  // skinny_gemm_valid's bound

}  // namespace

bool skinny_linear_supported(at::ScalarType dtype, int64_t rows, int64_t in_features) {
  return is_half_type(dtype) && rows >= 0 && rows <= kernels::kSkinnyGemmMaxRows && in_features >= 8 &&
         in_features % 8 == 0 && in_features <= kMaxK;
}

at::Tensor skinny_linear(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                         SkinnyEpilogue epilogue, bool float_out, bool constant_weight) {
  // 1. Validate.
  constexpr const char* op = "skinny_linear";
  check_half_operand(op, "x", x);
  check_like(op, "weight", weight, "x", x);
  GSA_CHECK(x.dim() >= 1 && weight.dim() == 2 && weight.size(1) == x.size(-1),
            "skinny_linear: weight must be [N, K] with K = x's last dim, got x ", x.sizes(), " and weight ",
            weight.sizes());
  const int64_t K = x.size(-1), N = weight.size(0);
  GSA_CHECK(K >= 8 && K % 8 == 0 && K <= kMaxK, "skinny_linear: K must be a multiple of 8 up to 2^30, got ", K);
  const int64_t M = x.numel() / K;
  GSA_CHECK(M <= kernels::kSkinnyGemmMaxRows, "skinny_linear: x must have at most ", kernels::kSkinnyGemmMaxRows,
            " rows, got ", M, " (x ", x.sizes(), ")");
  GSA_CHECK(N >= 1 && N <= std::numeric_limits<int32_t>::max(), "skinny_linear: weight ", weight.sizes(),
            " must have between 1 and 2^31 - 1 rows");
  const bool silu = epilogue == SkinnyEpilogue::kSiluMul;
  GSA_CHECK(epilogue == SkinnyEpilogue::kNone || silu, "skinny_linear: unknown epilogue ", static_cast<int>(epilogue));
  GSA_CHECK(!silu || N % 2 == 0, "skinny_linear: kSiluMul needs the weight [gate; up] with 2 I rows, got N = ", N);
  const bool has_bias = bias.has_value() && bias->defined();
  if (has_bias) {
    check_like(op, "bias", *bias, "x", x);
    GSA_CHECK(bias->dim() == 1 && bias->size(0) == N, "skinny_linear: bias must be [N] = [", N, "], got ",
              bias->sizes());
  }

  // 2. Readable rows and the output, without autograd.
  at::NoGradGuard no_grad;
  const int64_t out_cols = silu ? N / 2 : N;
  std::vector<int64_t> out_sizes = x.sizes().vec();
  out_sizes.back() = out_cols;
  at::Tensor out = at::empty(out_sizes, x.options().dtype(float_out ? at::kFloat : x.scalar_type()));  // [..., N_out]
  if (M == 0) return out;
  const at::Tensor xs = rows_for_16_byte_loads(x.reshape({M, K}));  // [M, K]
  const at::Tensor w = rows_for_16_byte_loads(weight);              // [N, K]
  const at::Tensor b = has_bias ? bias->contiguous() : at::Tensor();  // [N]

  kernels::SkinnyGemmParams p;
  p.dtype = kernel_dtype(x);
  p.epilogue = epilogue;
  p.m = static_cast<int32_t>(M);
  p.n = static_cast<int32_t>(N);
  p.k = static_cast<int32_t>(K);
  p.x = xs.data_ptr();
  p.x_stride = xs.stride(0);
  p.weight = w.data_ptr();
  p.weight_stride = w.stride(0);
  p.bias = has_bias ? b.data_ptr() : nullptr;
  p.out = out.data_ptr();
  p.out_stride = out_cols;
  p.out_float = float_out;
  p.weight_early = constant_weight && w.data_ptr() == weight.data_ptr();  // not when this call copied it just now

  // 3. Dispatch.
  const kernels::Status status = run_kernel(
      x.device(), [&](void* stream) { return kernels::skinny_gemm_cuda(p, stream); },
      [&] { return kernels::skinny_gemm_reference(p); });
  check_kernel_status(status, op, x.device());
  return out;
}

}  // namespace gsa
