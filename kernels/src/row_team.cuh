// Private to gsa_kernels: the pieces of the "row team" pattern the decode and selection kernels share. A team of
// D / 8 lanes reads one D-element bf16/fp16 row with one 16-byte load per lane (8 elements each) and combines
// its lanes' partial dot products by shuffles. Teams are aligned groups of lanes within a warp.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace gsa::kernels::detail {

// The 8 elements of a 16-byte load as floats.
template <typename T>
__device__ __forceinline__ void to_floats(const uint4& raw, float (&x)[8]) {
  const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
  for (int i = 0; i < 8; ++i) x[i] = float(e[i]);
}

// A lane's share of a dot product: its 8 elements of a row times its 8 elements of a query, fp32.
__device__ __forceinline__ float dot8(const float (&x)[8], const float (&q)[8]) {
  float dot = 0.f;
#pragma unroll
  for (int i = 0; i < 8; ++i) dot = fmaf(x[i], q[i], dot);
  return dot;
}

// Sum over the kTeam lanes of a row team; every lane of the warp must call it.
template <int kTeam>
__device__ __forceinline__ float team_sum(float v) {
#pragma unroll
  for (int o = kTeam / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Largest value over the kTeam lanes of a row team; every lane of the warp must call it.
template <int kTeam>
__device__ __forceinline__ float team_max(float v) {
#pragma unroll
  for (int o = kTeam / 2; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

}  // namespace gsa::kernels::detail
