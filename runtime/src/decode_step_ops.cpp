// LibTorch bindings of the fused decode-step kernels: validate -> 16-byte-readable rows -> outputs -> params ->
// run_kernel (CUDA kernel on the current stream, or the CPU twin).
#include "gsa/runtime/decode_step_ops.h"

#include <limits>
#include <vector>

#include "gsa/kernels/decode_step_ops.h"
#include "gsa/runtime/error.h"
#include "kernel_tensors.h"

namespace gsa {
namespace {

constexpr int64_t kMaxRows = std::numeric_limits<int32_t>::max();

}  // namespace

bool decode_step_ops_supported(at::ScalarType dtype, int64_t head_dim, int64_t hidden, int64_t intermediate) {
  auto multiple_of_8 = [](int64_t n) { return n >= 8 && n % 8 == 0; };
  return is_half_type(dtype) && multiple_of_8(head_dim) && multiple_of_8(hidden) &&
         hidden <= kernels::kAddRmsNormMaxHidden && multiple_of_8(intermediate);
}

at::Tensor rope_append(const at::Tensor& qkv, const at::Tensor& cos, const at::Tensor& sin_rotated, int64_t q_heads,
                       int64_t kv_heads, const at::Tensor& positions, const kernels::KvRows& k_cache,
                       const kernels::KvRows& v_cache) {
  // 1. Validate.
  constexpr const char* op = "rope_append";
  check_half_operand(op, "qkv", qkv);
  GSA_CHECK(qkv.dim() == 2 || (qkv.dim() == 3 && qkv.size(1) == 1),
            "rope_append: qkv must be [B, (Hq + 2 Hkv) * D] or [B, 1, (Hq + 2 Hkv) * D], got ", qkv.sizes());
  GSA_CHECK(q_heads >= 1 && kv_heads >= 1, "rope_append: need Hq >= 1 and Hkv >= 1, got ", q_heads, " and ",
            kv_heads);
  const int64_t B = qkv.size(0), width = qkv.size(-1), heads = q_heads + 2 * kv_heads;
  GSA_CHECK(width % heads == 0, "rope_append: qkv's last dim ", width, " is not (Hq + 2 Hkv) * D for Hq = ", q_heads,
            ", Hkv = ", kv_heads);
  const int64_t D = width / heads;
  GSA_CHECK(D >= 8 && D % 8 == 0, "rope_append: the head dim must be a multiple of 8, got ", D);
  const auto [cos_rows, sin_rows] = rope_table_rows(op, "qkv", qkv, cos, sin_rotated, B, D);  // [B, D] each
  GSA_CHECK(positions.defined(), "rope_append: positions is undefined");
  const at::Tensor pos = kv_append_positions(op, positions, k_cache, v_cache, B, qkv.device());  // [B]
  GSA_CHECK(B <= kMaxRows && heads <= kMaxRows, "rope_append: qkv ", qkv.sizes(), " is too large");

  // 2. Readable rows and the output, without autograd.
  at::NoGradGuard no_grad;
  at::Tensor q_out = at::empty({B, q_heads, D}, qkv.options());  // [B, Hq, D]
  if (B == 0) return q_out;
  const at::Tensor in = rows_for_16_byte_loads(qkv.reshape({B, width}));      // [B, (Hq + 2 Hkv) * D]

  kernels::RopeAppendParams p;
  p.dtype = kernel_dtype(qkv);
  p.batch = static_cast<int32_t>(B);
  p.q_heads = static_cast<int32_t>(q_heads);
  p.kv_heads = static_cast<int32_t>(kv_heads);
  p.head_dim = static_cast<int32_t>(D);
  p.qkv = in.data_ptr();
  p.qkv_stride = in.stride(0);
  p.cos = cos_rows.data_ptr();
  p.cos_stride = cos_rows.stride(0);
  p.sin_rotated = sin_rows.data_ptr();
  p.sin_stride = sin_rows.stride(0);
  p.q_out = q_out.data_ptr();
  p.positions = pos.data_ptr<int64_t>();
  p.k = k_cache;
  p.v = v_cache;

  // 3. Dispatch.
  const kernels::Status status = run_kernel(
      qkv.device(), [&](void* stream) { return kernels::rope_append_cuda(p, stream); },
      [&] { return kernels::rope_append_reference(p); });
  check_kernel_status(status, op, qkv.device());
  return q_out;
}

std::pair<at::Tensor, at::Tensor> add_rms_norm(const at::Tensor& x, const at::Tensor& y, const at::Tensor& weight,
                                               double eps) {
  // 1. Validate.
  constexpr const char* op = "add_rms_norm";
  check_half_operand(op, "x", x);
  check_like(op, "y", y, "x", x);
  check_like(op, "weight", weight, "x", x);
  GSA_CHECK(x.dim() >= 1 && x.sizes() == y.sizes(), "add_rms_norm: x and y must both be [..., H], got ", x.sizes(),
            " and ", y.sizes());
  const int64_t H = x.size(-1);
  GSA_CHECK(weight.dim() == 1 && weight.size(0) == H, "add_rms_norm: weight must be [H] = [", H, "], got ",
            weight.sizes());
  GSA_CHECK(H >= 8 && H % 8 == 0 && H <= kernels::kAddRmsNormMaxHidden,
            "add_rms_norm: H must be a multiple of 8 up to ", kernels::kAddRmsNormMaxHidden, ", got ", H);
  GSA_CHECK(eps >= 0, "add_rms_norm: eps must be >= 0, got ", eps);
  const int64_t N = x.numel() / H;
  GSA_CHECK(N <= kMaxRows, "add_rms_norm: too many rows (", N, ")");

  // 2. Readable rows and the outputs, without autograd.
  at::NoGradGuard no_grad;
  at::Tensor sum = at::empty(x.sizes(), x.options());     // [..., H]
  at::Tensor normed = at::empty(x.sizes(), x.options());  // [..., H]
  if (N == 0) return {sum, normed};
  const at::Tensor xs = rows_for_16_byte_loads(x.reshape({N, H}));  // [N, H]
  const at::Tensor ys = rows_for_16_byte_loads(y.reshape({N, H}));  // [N, H]
  const at::Tensor w = rows_for_16_byte_loads(weight);              // [H]

  kernels::AddRmsNormParams p;
  p.dtype = kernel_dtype(x);
  p.rows = static_cast<int32_t>(N);
  p.hidden = static_cast<int32_t>(H);
  p.x = xs.data_ptr();
  p.x_stride = xs.stride(0);
  p.y = ys.data_ptr();
  p.y_stride = ys.stride(0);
  p.weight = w.data_ptr();
  p.eps = static_cast<float>(eps);  // LibTorch's rms_norm also adds eps in fp32 for bf16/fp16
  p.sum_out = sum.data_ptr();
  p.normed_out = normed.data_ptr();

  // 3. Dispatch.
  const kernels::Status status = run_kernel(
      x.device(), [&](void* stream) { return kernels::add_rms_norm_cuda(p, stream); },
      [&] { return kernels::add_rms_norm_reference(p); });
  check_kernel_status(status, op, x.device());
  return {sum, normed};
}

at::Tensor silu_mul(const at::Tensor& gate_up) {
  // 1. Validate.
  constexpr const char* op = "silu_mul";
  check_half_operand(op, "gate_up", gate_up);
  GSA_CHECK(gate_up.dim() >= 1 && gate_up.size(-1) >= 16 && gate_up.size(-1) % 16 == 0,
            "silu_mul: gate_up must be [..., 2 I] with I a multiple of 8, got ", gate_up.sizes());
  const int64_t I = gate_up.size(-1) / 2, N = gate_up.numel() / (2 * I);
  GSA_CHECK(N <= kMaxRows, "silu_mul: too many rows (", N, ")");

  // 2. Readable rows and the output, without autograd.
  at::NoGradGuard no_grad;
  std::vector<int64_t> out_sizes = gate_up.sizes().vec();
  out_sizes.back() = I;
  at::Tensor out = at::empty(out_sizes, gate_up.options());  // [..., I]
  if (N == 0) return out;
  const at::Tensor in = rows_for_16_byte_loads(gate_up.reshape({N, 2 * I}));  // [N, 2 I]

  kernels::SiluMulParams p;
  p.dtype = kernel_dtype(gate_up);
  p.rows = static_cast<int32_t>(N);
  p.intermediate = static_cast<int32_t>(I);
  p.gate_up = in.data_ptr();
  p.gate_up_stride = in.stride(0);
  p.out = out.data_ptr();

  // 3. Dispatch.
  const kernels::Status status = run_kernel(
      gate_up.device(), [&](void* stream) { return kernels::silu_mul_cuda(p, stream); },
      [&] { return kernels::silu_mul_reference(p); });
  check_kernel_status(status, op, gate_up.device());
  return out;
}

}  // namespace gsa
