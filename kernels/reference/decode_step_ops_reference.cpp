// CPU twins of the decode_step_ops.h kernels: the same formulas element by element, in fp32 where the kernels
// (and LibTorch) round, so rope_append and silu_mul give the kernels' bits; add_rms_norm sums its squares in
// float64 (the kernel's fp32 sum may move rstd by its last bits, hence normed by one ulp at most, rarely).
#include <cmath>
#include <cstring>

#include "gsa/kernels/decode_step_ops.h"
#include "half_storage.h"

namespace gsa::kernels {
namespace {

using detail::load_element;
using detail::store_element;

float load(const void* base, int64_t i, DType dtype) { return static_cast<float>(load_element(base, i, dtype)); }

// v rounded to the dtype and read back (the kernels' round_to).
float round_to(float v, DType dtype) {
  uint16_t bits;
  store_element(&bits, 0, v, dtype);
  return load(&bits, 0, dtype);
}

}  // namespace

Status rope_append_reference(const RopeAppendParams& p) {
  if (!rope_append_valid(p)) return Status::kInvalidArgument;
  const int D = p.head_dim, half = D / 2;
  for (int b = 0; b < p.batch; ++b) {
    const uint16_t* qkv = static_cast<const uint16_t*>(p.qkv) + b * p.qkv_stride;  // [(Hq + 2 Hkv) * D]
    const uint16_t* cos = static_cast<const uint16_t*>(p.cos) + b * p.cos_stride;  // [D]
    const uint16_t* sin = static_cast<const uint16_t*>(p.sin_rotated) + b * p.sin_stride;
    const int64_t pos = p.positions[b];
    for (int h = 0; h < p.q_heads + p.kv_heads; ++h) {  // q heads, then k heads: rotated
      const uint16_t* x = qkv + int64_t(h) * D;
      uint16_t* out = h < p.q_heads ? static_cast<uint16_t*>(p.q_out) + (int64_t(b) * p.q_heads + h) * D
                                    : p.k.head<uint16_t>(b, h - p.q_heads, p.kv_heads) + pos * p.k.row_stride;
      for (int e = 0; e < D; ++e) {
        const float t = round_to(load(x, e, p.dtype) * load(cos, e, p.dtype), p.dtype);
        const float swapped = load(x, (e + half) % D, p.dtype);
        store_element(out, e, t + swapped * load(sin, e, p.dtype), p.dtype);
      }
    }
    for (int kv = 0; kv < p.kv_heads; ++kv) {  // v heads: copied
      const uint16_t* src = qkv + int64_t(p.q_heads + p.kv_heads + kv) * D;
      std::memcpy(p.v.head<uint16_t>(b, kv, p.kv_heads) + pos * p.v.row_stride, src, sizeof(uint16_t) * D);
    }
  }
  return Status::kOk;
}

Status add_rms_norm_reference(const AddRmsNormParams& p) {
  if (!add_rms_norm_valid(p)) return Status::kInvalidArgument;
  const int H = p.hidden;
  for (int r = 0; r < p.rows; ++r) {
    const void* x = static_cast<const uint16_t*>(p.x) + r * p.x_stride;  // [H]
    const void* y = static_cast<const uint16_t*>(p.y) + r * p.y_stride;
    uint16_t* sum = static_cast<uint16_t*>(p.sum_out) + int64_t(r) * H;
    uint16_t* normed = static_cast<uint16_t*>(p.normed_out) + int64_t(r) * H;
    double squares = 0;
    for (int e = 0; e < H; ++e) {
      const float s = round_to(load(x, e, p.dtype) + load(y, e, p.dtype), p.dtype);
      store_element(sum, e, s, p.dtype);
      squares += double(s) * s;
    }
    const float rstd = static_cast<float>(1.0 / std::sqrt(squares / H + double(p.eps)));
    for (int e = 0; e < H; ++e) {
      store_element(normed, e, load(p.weight, e, p.dtype) * (rstd * load(sum, e, p.dtype)), p.dtype);
    }
  }
  return Status::kOk;
}

Status silu_mul_reference(const SiluMulParams& p) {
  if (!silu_mul_valid(p)) return Status::kInvalidArgument;
  const int I = p.intermediate;
  for (int r = 0; r < p.rows; ++r) {
    const uint16_t* gate = static_cast<const uint16_t*>(p.gate_up) + r * p.gate_up_stride;  // [2 I]
    uint16_t* out = static_cast<uint16_t*>(p.out) + int64_t(r) * I;
    for (int e = 0; e < I; ++e) {
      const float g = load(gate, e, p.dtype);
      const float silu = round_to(g / (1.f + std::exp(-g)), p.dtype);
      store_element(out, e, silu * load(gate, I + e, p.dtype), p.dtype);
    }
  }
  return Status::kOk;
}

}  // namespace gsa::kernels
