// greedy_choice_cuda: one CTA. The forbidden ids become a shared-memory bitmap; each thread scans 8-element
// chunks of the row (16-byte loads for 16-bit logits, 32-byte for fp32, four chunks in flight) keeping its first
// best (value, id) and a NaN flag; warp shuffles, then the warps' results in shared memory, give the CTA's.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "gsa/kernels/greedy_choice.h"
#include "row_team.cuh"  // to_floats

namespace gsa::kernels {
namespace {

constexpr int kThreads = 1024;
constexpr int kChunk = 8;     // logits a thread loads at once
constexpr int kInFlight = 4;  // chunks a thread loads before it compares

struct Best {
  float value;
  int64_t id;
};

// a is better than b: larger, or as large and first (NaN never wins: the flag carries it).
__device__ __forceinline__ bool better(const Best& a, const Best& b) {
  return a.value > b.value || (a.value == b.value && a.id < b.id);
}

// Logits first .. first + 7 of the row as floats (-inf past its end): one 16-byte load for 16-bit logits, two
// for fp32, element by element at the row's tail.
template <typename T>
__device__ __forceinline__ void load_chunk(const T* row, int64_t first, int64_t vocab, float (&v)[kChunk]) {
  if (first + kChunk > vocab) {
    for (int e = 0; e < kChunk; ++e) v[e] = first + e < vocab ? float(row[first + e]) : -INFINITY;
  } else if constexpr (std::is_same_v<T, float>) {
    const float4 a = *reinterpret_cast<const float4*>(row + first);
    const float4 b = *reinterpret_cast<const float4*>(row + first + 4);
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
  } else {
    detail::to_floats<T>(*reinterpret_cast<const uint4*>(row + first), v);
  }
}

// The warp's best (every lane must call it; lane 0 gets the result) and whether any lane saw a NaN.
__device__ __forceinline__ Best warp_best(Best best, bool& nan) {
#pragma unroll
  for (int o = 16; o > 0; o /= 2) {
    const Best other{__shfl_down_sync(0xffffffffu, best.value, o), __shfl_down_sync(0xffffffffu, best.id, o)};
    if (better(other, best)) best = other;
  }
  nan = __any_sync(0xffffffffu, nan);
  return best;
}

template <typename T>
__global__ void __launch_bounds__(kThreads, 1) greedy_choice_kernel(const __grid_constant__ GreedyChoiceParams p) {
  extern __shared__ uint32_t banned[];  // [ceil(V / 32)] bits
  __shared__ Best warps_best[kThreads / 32];
  __shared__ int warp_nan[kThreads / 32];
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int64_t words = (p.vocab + 31) / 32;
  for (int64_t w = tid; w < words; w += kThreads) banned[w] = 0u;
  __syncthreads();
  for (int i = tid; i < p.forbidden_count; i += kThreads) {
    const int64_t id = p.forbidden[i];
    if (id >= 0 && id < p.vocab) atomicOr(&banned[id / 32], 1u << (id % 32));
  }
  __syncthreads();
  const T* row = static_cast<const T*>(p.logits);
  Best best{-INFINITY, INT64_MAX};
  bool nan = false;
  constexpr int64_t kStride = int64_t(kThreads) * kChunk;
  for (int64_t base = int64_t(tid) * kChunk; base < p.vocab; base += kStride * kInFlight) {
    float v[kInFlight][kChunk];
#pragma unroll
    for (int c = 0; c < kInFlight; ++c) {
      const int64_t first = base + c * kStride;
      if (first < p.vocab) {
        load_chunk<T>(row, first, p.vocab, v[c]);
      } else {
#pragma unroll
        for (int e = 0; e < kChunk; ++e) v[c][e] = -INFINITY;
      }
    }
#pragma unroll
    for (int c = 0; c < kInFlight; ++c) {
#pragma unroll
      for (int e = 0; e < kChunk; ++e) {
        const int64_t id = base + c * kStride + e;
        const bool allowed = id < p.id_limit && id < p.vocab && !((banned[id / 32] >> (id % 32)) & 1u);
        const float x = allowed ? v[c][e] : -INFINITY;
        nan = nan || isnan(x);
        const Best here{x, id};
        if (id < p.vocab && better(here, best)) best = here;
      }
    }
  }
  best = warp_best(best, nan);
  if (lane == 0) {
    warps_best[warp] = best;
    warp_nan[warp] = nan ? 1 : 0;
  }
  __syncthreads();
  if (warp == 0) {
    nan = warp_nan[lane] != 0;
    best = warp_best(warps_best[lane], nan);
    if (lane == 0) {
      p.out[0] = best.id;
      p.out[1] = nan ? 1 : 0;
    }
  }
}

}  // namespace

Status greedy_choice_cuda(const GreedyChoiceParams& p, void* stream) {
  if (p.vocab < 1 || p.vocab > kGreedyChoiceMaxVocab || !p.logits || !p.out || p.forbidden_count < 0 ||
      (p.forbidden_count > 0 && !p.forbidden)) {
    return Status::kInvalidArgument;
  }
  const int alignment = p.dtype == LogitType::kFloat32 ? 32 : 16;
  if (reinterpret_cast<uintptr_t>(p.logits) % alignment != 0) return Status::kInvalidArgument;
  const size_t smem = static_cast<size_t>((p.vocab + 31) / 32) * sizeof(uint32_t);
  const auto s = static_cast<cudaStream_t>(stream);
  auto launch = [&](auto kernel) {  // smem <= 48 KB (kGreedyChoiceMaxVocab): no opt-in needed
    kernel<<<1, kThreads, smem, s>>>(p);
    return cudaGetLastError() == cudaSuccess ? Status::kOk : Status::kCudaError;
  };
  switch (p.dtype) {
    case LogitType::kBFloat16:
      return launch(greedy_choice_kernel<__nv_bfloat16>);
    case LogitType::kFloat16:
      return launch(greedy_choice_kernel<__half>);
    default:
      return launch(greedy_choice_kernel<float>);
  }
}

}  // namespace gsa::kernels
