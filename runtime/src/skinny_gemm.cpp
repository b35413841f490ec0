// LibTorch binding of the skinny GEMM: validate -> 16-byte-readable rows -> output -> params (SkinnyCall) ->
// run_kernel (CUDA kernel on the current stream, or the CPU twin); skinny_rope_linear adds the RoPE epilogue's
// operands to the same call.
#include "gsa/runtime/skinny_gemm.h"

#include <limits>
#include <tuple>
#include <vector>

#include <ATen/core/grad_mode.h>  // NoGradGuard

#include "gsa/runtime/error.h"
#include "kernel_tensors.h"

namespace gsa {
namespace {

constexpr int64_t kMaxK = int64_t{1} << 30;  // skinny_gemm_valid's bound

// One validated call's params and the tensors they point into (kept alive until the kernel is queued).
struct SkinnyCall {
  kernels::SkinnyGemmParams params;
  at::Tensor x, weight, bias, out;      // [M, K], [N, K], [N], [..., N_out]
  at::Tensor cos, sin_rotated, positions;  // the RoPE epilogue's [M, D], [M, D], [M]
  int64_t rows = 0;                     // M
};

// Validates x, weight and bias as `op`'s operands and builds the call (out [..., N_out] allocated, out_cols
// columns, N_out = N or N / 2 by the epilogue unless given; params.rope left off).
SkinnyCall prepare(const char* op, const at::Tensor& x, const at::Tensor& weight,
                   const std::optional<at::Tensor>& bias, SkinnyEpilogue epilogue, bool float_out,
                   bool constant_weight, int64_t out_cols_given = -1) {
  // 1. Validate.
  check_half_operand(op, "x", x);
  check_like(op, "weight", weight, "x", x);
  GSA_CHECK(x.dim() >= 1 && weight.dim() == 2 && weight.size(1) == x.size(-1), op,
            ": weight must be [N, K] with K = x's last dim, got x ", x.sizes(), " and weight ", weight.sizes());
  const int64_t K = x.size(-1), N = weight.size(0);
  GSA_CHECK(K >= 8 && K % 8 == 0 && K <= kMaxK, op, ": K must be a multiple of 8 up to 2^30, got ", K);
  const int64_t M = x.numel() / K;
  GSA_CHECK(M <= kernels::kSkinnyGemmMaxRows, op, ": x must have at most ", kernels::kSkinnyGemmMaxRows,
            " rows, got ", M, " (x ", x.sizes(), ")");
  GSA_CHECK(N >= 1 && N <= std::numeric_limits<int32_t>::max(), op, ": weight ", weight.sizes(),
            " must have between 1 and 2^31 - 1 rows");
  const bool silu = epilogue == SkinnyEpilogue::kSiluMul;
  GSA_CHECK(epilogue == SkinnyEpilogue::kNone || silu || epilogue == SkinnyEpilogue::kRopeAppend, op,
            ": unknown epilogue ", static_cast<int>(epilogue));
  GSA_CHECK(!silu || N % 2 == 0, op, ": kSiluMul needs the weight [gate; up] with 2 I rows, got N = ", N);
  const bool has_bias = bias.has_value() && bias->defined();
  if (has_bias) {
    check_like(op, "bias", *bias, "x", x);
    GSA_CHECK(bias->dim() == 1 && bias->size(0) == N, op, ": bias must be [N] = [", N, "], got ", bias->sizes());
  }

  // 2. Readable rows and the output.
  const int64_t out_cols = out_cols_given >= 0 ? out_cols_given : silu ? N / 2 : N;
  std::vector<int64_t> out_sizes = x.sizes().vec();
  out_sizes.back() = out_cols;
  SkinnyCall call;
  call.rows = M;
  call.out = at::empty(out_sizes, x.options().dtype(float_out ? at::kFloat : x.scalar_type()));  // [..., N_out]
  if (M == 0) return call;
  call.x = rows_for_16_byte_loads(x.reshape({M, K}));  // [M, K]
  call.weight = rows_for_16_byte_loads(weight);        // [N, K]
  if (has_bias) call.bias = bias->contiguous();        // [N]

  kernels::SkinnyGemmParams& p = call.params;
  p.dtype = kernel_dtype(x);
  p.epilogue = epilogue;
  p.m = static_cast<int32_t>(M);
  p.n = static_cast<int32_t>(N);
  p.k = static_cast<int32_t>(K);
  p.x = call.x.data_ptr();
  p.x_stride = call.x.stride(0);
  p.weight = call.weight.data_ptr();
  p.weight_stride = call.weight.stride(0);
  p.bias = has_bias ? call.bias.data_ptr() : nullptr;
  p.out = call.out.data_ptr();
  p.out_stride = out_cols;
  p.out_float = float_out;
  // Not when this call copied the weight just now.
  p.weight_early = constant_weight && call.weight.data_ptr() == weight.data_ptr();
  return call;
}

void run(const char* op, const SkinnyCall& call, const at::Device& device) {
  if (call.rows == 0) return;
  const kernels::SkinnyGemmParams& p = call.params;
  const kernels::Status status = run_kernel(
      device, [&](void* stream) { return kernels::skinny_gemm_cuda(p, stream); },
      [&] { return kernels::skinny_gemm_reference(p); });
  check_kernel_status(status, op, device);
}

}  // namespace

bool skinny_linear_supported(at::ScalarType dtype, int64_t rows, int64_t in_features) {
  return is_half_type(dtype) && rows >= 0 && rows <= kernels::kSkinnyGemmMaxRows && in_features >= 8 &&
         in_features % 8 == 0 && in_features <= kMaxK;
}

at::Tensor skinny_linear(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                         SkinnyEpilogue epilogue, bool float_out, bool constant_weight) {
  at::NoGradGuard no_grad;
  const SkinnyCall call = prepare("skinny_linear", x, weight, bias, epilogue, float_out, constant_weight);
  run("skinny_linear", call, x.device());
  return call.out;
}

bool skinny_rope_linear_supported(at::ScalarType dtype, int64_t rows, int64_t in_features, int64_t head_dim) {
  return skinny_linear_supported(dtype, rows, in_features) && head_dim >= 16 && head_dim % 16 == 0;
}

at::Tensor skinny_rope_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                              const SkinnyRopeTarget& target, bool constant_weight) {
  // 1. The heads' shape, then the GEMM's operands (out: the q heads) and the RoPE epilogue's.
  constexpr const char* op = "skinny_rope_linear";
  at::NoGradGuard no_grad;
  const int64_t hq = target.q_heads, hkv = target.kv_heads;
  GSA_CHECK(hq >= 1 && hkv >= 1, op, ": need Hq >= 1 and Hkv >= 1, got ", hq, " and ", hkv);
  GSA_CHECK(weight.dim() == 2 && weight.size(0) % (hq + 2 * hkv) == 0, op, ": weight ", weight.sizes(),
            " is not (Hq + 2 Hkv) * D rows for Hq = ", hq, ", Hkv = ", hkv);
  const int64_t D = weight.size(0) / (hq + 2 * hkv);
  GSA_CHECK(D >= 16 && D % 16 == 0, op, ": the head dim must be a multiple of 16, got ", D);
  SkinnyCall call = prepare(op, x, weight, bias.defined() ? std::optional<at::Tensor>(bias) : std::nullopt,
                            SkinnyEpilogue::kRopeAppend, /*float_out=*/false, constant_weight, hq * D);
  const int64_t B = call.rows;
  std::tie(call.cos, call.sin_rotated) = rope_table_rows(op, "x", x, target.cos, target.sin_rotated, B, D);  // [B, D]
  const StepKvRows& kv = target.kv;
  const bool store_kv = kv.positions.defined();
  if (store_kv) call.positions = kv_append_positions(op, kv.positions, kv.k, kv.v, B, x.device());  // [B]
  const at::Tensor q = call.out.view({B, hq, D});  // [B, Hq, D]: out's rows are [Hq D] contiguous
  if (B == 0) return q;
  kernels::SkinnyRopeAppend& r = call.params.rope;
  r.q_heads = static_cast<int32_t>(hq);
  r.kv_heads = static_cast<int32_t>(hkv);
  r.head_dim = static_cast<int32_t>(D);
  r.cos = call.cos.data_ptr();
  r.cos_stride = call.cos.stride(0);
  r.sin_rotated = call.sin_rotated.data_ptr();
  r.sin_stride = call.sin_rotated.stride(0);
  r.positions = store_kv ? call.positions.data_ptr<int64_t>() : nullptr;
  if (store_kv) {
    r.k = kv.k;
    r.v = kv.v;
  }

  // 2. Dispatch.
  run(op, call, x.device());
  return q;
}

}  // namespace gsa
