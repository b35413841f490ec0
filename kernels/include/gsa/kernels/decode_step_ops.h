// Three fused element-wise kernels of a serving decode step (one launch each instead of several LibTorch ops per
// layer), bf16 or fp16, each reproducing the rounding of the LibTorch ops it replaces:
//
//   rope_append   RoPE on the q and k heads of one step's fused projection and the KV-cache append:
//                 q_out[b, h] = rope(q[b, h]); K cache row positions[b] of (b, kv) = rope(k[b, kv]); V cache row
//                 positions[b] of (b, kv) = v[b, kv]. rope(x) = round(float(round(x * cos)) + swapped * sin_rotated)
//                 with swapped = [x2, x1] (halves of x) and sin_rotated = [-sin, sin], both products and the sum
//                 in fp32 (each product of two bf16/fp16 values is exact in fp32): what runtime/rope.cpp's
//                 apply_rope computes with LibTorch's mul and addcmul, bit for bit.
//   add_rms_norm  sum = round(x + y) (fp32 add, one rounding: LibTorch's add) and
//                 normed = round(w * (rstd * sum)), rstd = rsqrt(mean(sum^2) + eps), with the mean of squares
//                 of the ROUNDED sum accumulated in fp32 and the two products in fp32, rounded once at the end:
//                 what at::rms_norm computes (its fused CUDA kernel and its CPU composite both scale by the
//                 weight before rounding). The order of the sum differs from LibTorch's, so normed may differ
//                 by one ulp of the dtype where rstd lands differently in its last fp32 bits.
//   silu_mul      out = round(round(silu(gate)) * up), silu(g) = g / (1 + exp(-g)) in fp32 (LibTorch's at::silu
//                 then the multiply), gate = the first I columns of a row of gate_up, up = the next I.
//
// Contract: framework-free (raw pointers, element strides, a cudaStream_t passed as void*, a Status; no
// allocation, no host synchronisation, so the CUDA entry points are capturable in a CUDA graph). Every tensor
// row is 16-byte aligned with its last dim contiguous: pointers 16-byte aligned and strides multiples of 8
// elements; head_dim, hidden and intermediate sizes multiples of 8. The *_valid functions below state the
// checks both entry points make (kInvalidArgument otherwise). The caller guarantees positions[b] is a row
// inside sequence b's caches (no bounds check: the kernels cannot report one without a host sync).
// *_cuda: device pointers (the KvRows pointer tables in device memory), launch on `stream`; kNoCuda in a build
// without nvcc. *_reference: the CPU twins (same signature, host pointers), in fp32 where LibTorch's rounding is
// reproduced and in float64 for add_rms_norm's sum of squares (its exact value, rstd rounded once to fp32).
#pragma once

#include <cstdint>

#include "gsa/kernels/kv_rows.h"
#include "gsa/kernels/lse_merge.h"         // Status
#include "gsa/kernels/sparse_attention.h"  // DType

namespace gsa::kernels {

// Largest hidden size add_rms_norm runs (one CTA per row holds its row in registers).
constexpr int32_t kAddRmsNormMaxHidden = 16384;

struct RopeAppendParams {
  DType dtype = DType::kBFloat16;
  int32_t batch = 0, q_heads = 0, kv_heads = 0, head_dim = 0;  // B, Hq, Hkv, D
  const void* qkv = nullptr;           // [B, (Hq + 2 Hkv) * D]: q heads, then k heads, then v heads
  int64_t qkv_stride = 0;              // batch row stride
  const void* cos = nullptr;           // [B, D]
  int64_t cos_stride = 0;
  const void* sin_rotated = nullptr;   // [B, D]: [-sin, sin]
  int64_t sin_stride = 0;
  void* q_out = nullptr;               // [B, Hq, D] contiguous
  const int64_t* positions = nullptr;  // [B] cache row each sequence's k and v go to
  KvRows k, v;                         // the caches (kv_rows.h), [.., Hkv, capacity, D] per sequence
};

struct AddRmsNormParams {
  DType dtype = DType::kBFloat16;
  int32_t rows = 0, hidden = 0;  // N, H
  const void* x = nullptr;       // [N, H]
  int64_t x_stride = 0;
  const void* y = nullptr;       // [N, H]
  int64_t y_stride = 0;
  const void* weight = nullptr;  // [H]
  float eps = 1e-5f;
  void* sum_out = nullptr;       // [N, H] contiguous: round(x + y)
  void* normed_out = nullptr;    // [N, H] contiguous: RMSNorm(sum) * weight
};

struct SiluMulParams {
  DType dtype = DType::kBFloat16;
  int32_t rows = 0, intermediate = 0;  // N, I
  const void* gate_up = nullptr;       // [N, 2 I]: gate columns, then up columns
  int64_t gate_up_stride = 0;
  void* out = nullptr;                 // [N, I] contiguous
};

namespace decode_step_detail {
inline bool is_half_type(DType d) { return d == DType::kBFloat16 || d == DType::kFloat16; }
inline bool aligned_rows(const void* p, int64_t stride) {
  return p != nullptr && reinterpret_cast<uintptr_t>(p) % 16 == 0 && stride % 8 == 0;
}
inline bool aligned_rows(const KvRows& r) {
  if (r.empty() || r.row_stride % 8 != 0) return false;
  return r.heads != nullptr || (aligned_rows(r.base, r.stride_b) && r.stride_h % 8 == 0);
}
}  // namespace decode_step_detail

inline bool rope_append_valid(const RopeAppendParams& p) {
  using namespace decode_step_detail;
  return is_half_type(p.dtype) && p.batch >= 0 && p.q_heads >= 1 && p.kv_heads >= 1 && p.head_dim >= 8 &&
         p.head_dim % 8 == 0 && aligned_rows(p.qkv, p.qkv_stride) && aligned_rows(p.cos, p.cos_stride) &&
         aligned_rows(p.sin_rotated, p.sin_stride) && aligned_rows(p.q_out, 0) && p.positions != nullptr &&
         aligned_rows(p.k) && aligned_rows(p.v);
}

inline bool add_rms_norm_valid(const AddRmsNormParams& p) {
  using namespace decode_step_detail;
  return is_half_type(p.dtype) && p.rows >= 0 && p.hidden >= 8 && p.hidden % 8 == 0 &&
         p.hidden <= kAddRmsNormMaxHidden && aligned_rows(p.x, p.x_stride) && aligned_rows(p.y, p.y_stride) &&
         aligned_rows(p.weight, 0) && aligned_rows(p.sum_out, 0) && aligned_rows(p.normed_out, 0) && p.eps >= 0.f;
}

inline bool silu_mul_valid(const SiluMulParams& p) {
  using namespace decode_step_detail;
  return is_half_type(p.dtype) && p.rows >= 0 && p.intermediate >= 8 && p.intermediate % 8 == 0 &&
         aligned_rows(p.gate_up, p.gate_up_stride) && aligned_rows(p.out, 0);
}

Status rope_append_cuda(const RopeAppendParams& params, void* stream);
Status rope_append_reference(const RopeAppendParams& params);

Status add_rms_norm_cuda(const AddRmsNormParams& params, void* stream);
Status add_rms_norm_reference(const AddRmsNormParams& params);

Status silu_mul_cuda(const SiluMulParams& params, void* stream);
Status silu_mul_reference(const SiluMulParams& params);

}  // namespace gsa::kernels
