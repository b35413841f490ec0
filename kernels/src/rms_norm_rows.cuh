// Private to gsa_kernels: the arithmetic of one RMSNorm row (decode_step_ops.h's add_rms_norm) for
// add_rms_norm_kernel (decode_step_ops.cu, one CTA a row), in a fixed order of operations:
//   sum_word(x, add, has_add, squares)  the 8 elements round(x + add) of a 16-byte word (x itself without add),
//                                       their squares added to `squares` in element order (one fmaf chain);
//   normed_word(sum, w, rstd)           round(w * (rstd * sum)) for the 8 elements of a word;
//   norm_threads(H)                     V, the threads of add_rms_norm's CTA: "thread" v < V chains the squares
//                                       of words v, v + V, v + 2 V, ... of a row, in that order;
//   warp_tree_sum(s)                    the sum over a warp's 32 lanes by xor shuffles 16, 8, 4, 2, 1;
//   rstd_of(warp_sums, V, H, eps)       the second tree, over the V / 32 warps' tree sums, then
//                                       rsqrt(sum / H + eps) in fp32 (LibTorch's fused rms_norm): the same
//                                       value in every lane.
// rstd depends on the order of the squares' sum; these pieces fix that order as a function of H alone, so a
// kernel that plays V threads with fewer (or more) real ones gets rstd bit for bit.
// Also the 16-byte word helpers both kernels use: load16 / store16, from_floats (8 floats rounded to T as one
// word) and round_to<T> (a float rounded to T and back: LibTorch's rounding of an intermediate result).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "row_team.cuh"  // to_floats

namespace gsa::kernels::detail {

constexpr int kNormMaxThreads = 512;  // add_rms_norm: threads per row at most

// Threads of add_rms_norm's CTA for a row of `hidden` elements: one 8-element word each up to H = 4096, then
// kNormMaxThreads with several words each.
__host__ __device__ constexpr int norm_threads(int hidden) {
  return hidden / 8 < kNormMaxThreads ? (hidden / 8 + 31) / 32 * 32 : kNormMaxThreads;
}

__device__ __forceinline__ uint4 load16(const void* p) { return *static_cast<const uint4*>(p); }
__device__ __forceinline__ void store16(void* p, const uint4& v) { *static_cast<uint4*>(p) = v; }

__device__ __forceinline__ uint32_t bits_of(__nv_bfloat16 v) { return __bfloat16_as_ushort(v); }
__device__ __forceinline__ uint32_t bits_of(__half v) { return __half_as_ushort(v); }

// 8 floats rounded to T (round to nearest even) as one 16-byte word (built from bits: no local memory).
template <typename T>
__device__ __forceinline__ uint4 from_floats(const float (&x)[8]) {
  uint32_t w[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) w[i] = bits_of(T(x[2 * i])) | bits_of(T(x[2 * i + 1])) << 16;
  return make_uint4(w[0], w[1], w[2], w[3]);
}

// v rounded to T and back: LibTorch's rounding of an intermediate result to the activations' dtype.
template <typename T>
__device__ __forceinline__ float round_to(float v) {
  return float(T(v));
}

// round(x + add) for the 8 elements of a word (x as it is without add), the squares of the result chained onto
// `squares` in element order.
template <typename T>
__device__ __forceinline__ uint4 sum_word(const uint4& x, const uint4& add, bool has_add, float& squares) {
  float a[8];
  to_floats<T>(x, a);
  if (has_add) {
    float e[8];
    to_floats<T>(add, e);
#pragma unroll
    for (int j = 0; j < 8; ++j) a[j] = round_to<T>(a[j] + e[j]);
  }
#pragma unroll
  for (int j = 0; j < 8; ++j) squares = fmaf(a[j], a[j], squares);  // exact square: a multiply then an add
  return has_add ? from_floats<T>(a) : x;  // exact: a[j] are T values
}

// round(w * (rstd * sum)) for the 8 elements of a word.
template <typename T>
__device__ __forceinline__ uint4 normed_word(const uint4& sum, const uint4& weight, float rstd) {
  float s[8], w[8];
  to_floats<T>(sum, s);
  to_floats<T>(weight, w);
#pragma unroll
  for (int j = 0; j < 8; ++j) s[j] = w[j] * (rstd * s[j]);
  return from_floats<T>(s);
}

__device__ __forceinline__ float warp_tree_sum(float s) {
#pragma unroll
  for (int o = 16; o > 0; o /= 2) s += __shfl_xor_sync(0xffffffffu, s, o);
  return s;
}

// rstd from the tree sums of V / 32 warps (warp_sums[0 .. V / 32)); every lane of a full warp calls it.
__device__ __forceinline__ float rstd_of(const float* warp_sums, int threads, int hidden, float eps) {
  const int lane = threadIdx.x % 32;
  const float s = warp_tree_sum(lane < threads / 32 ? warp_sums[lane] : 0.f);
  return rsqrtf(s / float(hidden) + eps);
}

}  // namespace gsa::kernels::detail
