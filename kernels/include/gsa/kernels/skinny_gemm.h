// Skinny GEMM: the projections of a decode step, a few activation rows times a weight matrix in LibTorch's
// Linear layout, bf16 or fp16:
//
//   acc[m, n] = sum_k x[m, k] * W[n, k]  (+ bias[n] when given),  m < M <= kSkinnyGemmMaxRows, n < N,
//
// products and sum in fp32 (the CUDA kernel's tensor cores; the CPU twin sums in float64), then one rounding:
//   kNone     out[m, n] = round(acc[m, n])                                                        [M, N]
//   kSiluMul  W = [gate (I rows); up (I rows)], N = 2 I:
//             out[m, i] = round(round(silu(round(acc[m, i]))) * round(acc[m, I + i]))           [M, I]
//             silu(g) = g / (1 + exp(-g)) in fp32: at::mm followed by silu_mul (decode_step_ops.h) given the
//             same accumulation, bit for bit.
//   kRopeAppend  W = the fused [q; k; v] projection of a decode step (rope.q_heads + 2 rope.kv_heads heads of D rows,
//             N = (Hq + 2 Hkv) D, D a multiple of 16); the epilogue is rope_append's (decode_step_ops.h) on the
//             rounded sums qkv = round(acc): out [M, Hq D] gets the rotated q heads, and with rope.positions the K
//             and V cache rows positions[m] of sequence m get the rotated k heads and the v heads. Bit for bit
//             kNone then rope_append_cuda: each warp's tile takes a head's rows d .. d + 7 and d + D / 2 .. + 7, so
//             a lane holds both halves RoPE pairs.
// round() is round-to-nearest-even to the dtype; with out_float the rounded value is stored as fp32 (the LM
// head's at::mm(...).to(kFloat)).
//
// Why: at M <= 8 a decode step's GEMMs only stream their weights (2 bytes each, used once); the CUDA kernel
// reads every weight once with 16-byte loads that bypass L1 and leave L2 early, many in flight per thread.
//
// Contract: framework-free (raw pointers, element strides, a cudaStream_t passed as void*, a Status; no
// allocation, no host synchronisation, so skinny_gemm_cuda is capturable in a CUDA graph). x and weight rows are
// 16-byte aligned with their last dim contiguous: pointers 16-byte aligned, strides multiples of 8 elements, and
// K a multiple of 8 (at most 2^30: int32 index arithmetic). bias (optional) is [N] contiguous in the dtype; out
// is [M, N_out] with row stride out_stride >= N_out (N_out = N, or I for kSiluMul), naturally aligned.
// skinny_gemm_valid states every check both entry points make (kInvalidArgument otherwise); M = 0 is valid and
// does nothing.
// *_cuda: device pointers, launch on `stream`; kNoCuda in a build without nvcc. The order of the sum over k
// depends on K and the split (split_k, or the launcher's choice from N, K and the SM count), not on the data or
// M: a result is reproducible run to run on one device.
// *_reference: the CPU twin (same signature, host pointers): float64 sums (bias added in float64), then the
// roundings above; it differs from the kernel only by the kernel's fp32 summation error.
#pragma once

#include <cstdint>

#include "gsa/kernels/decode_step_ops.h"   // decode_step_detail: the 16-byte row checks
#include "gsa/kernels/lse_merge.h"         // Status
#include "gsa/kernels/sparse_attention.h"  // DType

namespace gsa::kernels {

// Most activation rows one call multiplies (the kernel holds them as the 8 columns of an mma tile).
constexpr int32_t kSkinnyGemmMaxRows = 8;

enum class SkinnyEpilogue { kNone = 0, kSiluMul = 1, kRopeAppend = 2 };

// kRopeAppend's operands (see above; decode_step_ops.h's RopeAppendParams without the dtype and batch).
struct SkinnyRopeAppend {
  int32_t q_heads = 0, kv_heads = 0, head_dim = 0;  // Hq, Hkv, D
  const void* cos = nullptr;                        // [M, D]
  int64_t cos_stride = 0;
  const void* sin_rotated = nullptr;                // [M, D]: [-sin, sin]
  int64_t sin_stride = 0;
  const int64_t* positions = nullptr;               // [M] cache row of each sequence's k and v, or nullptr: none
  KvRows k, v;                                      // the caches (kv_rows.h), with positions
};

struct SkinnyGemmParams {
  DType dtype = DType::kBFloat16;
  SkinnyEpilogue epilogue = SkinnyEpilogue::kNone;
  int32_t m = 0, n = 0, k = 0;   // M (0..8), N (weight rows), K
  const void* x = nullptr;       // [M, K] activations
  int64_t x_stride = 0;          // row stride (elements)
  const void* weight = nullptr;  // [N, K]: Linear's weight; kSiluMul: gate rows, then up rows
  int64_t weight_stride = 0;
  const void* bias = nullptr;    // [N] or nullptr
  void* out = nullptr;           // [M, N_out] in the dtype, or fp32 with out_float
  int64_t out_stride = 0;
  bool out_float = false;
  // CUDA: the kernel may stream its first weight tiles before the kernels launched ahead of it have completed
  // (kernels/src/pdl.cuh). Set only when the kernel launched just before it does not write the weight (a model's
  // parameters); x is always read after it.
  bool weight_early = false;
  SkinnyRopeAppend rope;         // kRopeAppend's operands
  // CUDA only, a tuning knob: how many warps share one tile's K (1, 2, 4, 8 or 16); 0 lets the launcher choose from
  // N, K and the device's SM count. It fixes the order of the fp32 sum, so results differ by it in the last bits.
  int32_t split_k = 0;
};

// Columns of out: N, N / 2 for kSiluMul, Hq D for kRopeAppend.
inline int64_t skinny_gemm_out_cols(const SkinnyGemmParams& p) {
  if (p.epilogue == SkinnyEpilogue::kRopeAppend) return int64_t(p.rope.q_heads) * p.rope.head_dim;
  return p.epilogue == SkinnyEpilogue::kSiluMul ? p.n / 2 : p.n;
}

inline bool skinny_rope_valid(const SkinnyGemmParams& p) {
  using namespace decode_step_detail;
  const SkinnyRopeAppend& r = p.rope;
  if (p.epilogue != SkinnyEpilogue::kRopeAppend) return true;
  const bool caches_ok = r.positions == nullptr || (aligned_rows(r.k) && aligned_rows(r.v));
  return r.q_heads >= 1 && r.kv_heads >= 1 && r.head_dim >= 16 && r.head_dim % 16 == 0 &&
         int64_t(r.q_heads + 2 * r.kv_heads) * r.head_dim == p.n && !p.out_float && aligned_rows(r.cos, r.cos_stride) &&
         aligned_rows(r.sin_rotated, r.sin_stride) && caches_ok;
}

inline bool skinny_gemm_valid(const SkinnyGemmParams& p) {
  using namespace decode_step_detail;
  const bool silu = p.epilogue == SkinnyEpilogue::kSiluMul;
  const bool epilogue_ok = p.epilogue == SkinnyEpilogue::kNone || (silu && p.n % 2 == 0) ||
                           (p.epilogue == SkinnyEpilogue::kRopeAppend && skinny_rope_valid(p));
  const bool split_ok = p.split_k == 0 || p.split_k == 1 || p.split_k == 2 || p.split_k == 4 || p.split_k == 8 ||
                        p.split_k == 16;
  return is_half_type(p.dtype) && epilogue_ok && split_ok && p.m >= 0 && p.m <= kSkinnyGemmMaxRows &&
         p.n >= 1 && p.k >= 8 && p.k % 8 == 0 && p.k <= (1 << 30) && aligned_rows(p.x, p.x_stride) &&
         aligned_rows(p.weight, p.weight_stride) && p.out != nullptr && p.out_stride >= skinny_gemm_out_cols(p);
}

Status skinny_gemm_cuda(const SkinnyGemmParams& params, void* stream);
Status skinny_gemm_reference(const SkinnyGemmParams& params);

}  // namespace gsa::kernels
