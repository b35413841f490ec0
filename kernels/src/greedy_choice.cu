// greedy_choice_cuda: one CTA per kSlice ids of the row (a 128K vocabulary: 126 CTAs). A CTA marks the forbidden
// ids of its slice in a shared-memory bitmap, each thread loads its kPerThread logits at once (scalar loads: any
// alignment) and keeps its first best, the CTA reduces (warp shuffles, then the warps' results in shared memory),
// and folds its best into the workspace by one 64-bit atomicMax on (order key of the value, ~id): the larger value
// wins, then the lower id. The last CTA to arrive (a ticket counter) writes the answer and leaves the workspace
// zero for the next launch. (One CTA of 1,024 threads over the row took 44 us for 128K fp32 logits on an H200.)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "gsa/kernels/greedy_choice.h"
#include "top_k_select.cuh"  // order_key

namespace gsa::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int kPerThread = 4;
constexpr int kSlice = kThreads * kPerThread;  // ids a CTA covers
static_assert(kSlice % 32 == 0, "whole bitmap words a slice");

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }

// (order key of value, ~id): larger for a larger value, then for a lower id; 0 below every candidate (the order
// key of -inf is 0x007fffff). NaN never reaches it (the flag carries it).
__device__ __forceinline__ uint64_t candidate_key(float value, int64_t id) {
  return uint64_t(detail::order_key(value)) << 32 | uint32_t(~uint32_t(id));
}

template <typename T>
__global__ void __launch_bounds__(kThreads) greedy_choice_kernel(const __grid_constant__ GreedyChoiceParams p) {
  __shared__ uint32_t banned[kSlice / 32];
  __shared__ uint64_t warps_best[kThreads / 32];
  __shared__ int warps_nan[kThreads / 32];
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int64_t first = int64_t(blockIdx.x) * kSlice;
  if (tid < kSlice / 32) banned[tid] = 0u;
  __syncthreads();
  for (int i = tid; i < p.forbidden_count; i += kThreads) {
    const int64_t at = p.forbidden[i] - first;
    if (at >= 0 && at < kSlice) atomicOr(&banned[at / 32], 1u << (at % 32));
  }
  __syncthreads();
  const T* row = static_cast<const T*>(p.logits);
  float v[kPerThread];
#pragma unroll
  for (int e = 0; e < kPerThread; ++e) {  // every load issued before the first compare
    const int64_t id = first + e * kThreads + tid;
    v[e] = id < p.vocab ? to_float(row[id]) : -INFINITY;
  }
  uint64_t best = 0;
  bool nan = false;
#pragma unroll
  for (int e = 0; e < kPerThread; ++e) {
    const int at = e * kThreads + tid;
    const int64_t id = first + at;
    if (id >= p.vocab) continue;
    const bool allowed = id < p.id_limit && !((banned[at / 32] >> (at % 32)) & 1u);
    const float x = allowed ? v[e] : -INFINITY;
    if (isnan(x)) {
      nan = true;
    } else {
      best = max(best, candidate_key(x, id));
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o /= 2) best = max(best, __shfl_xor_sync(0xffffffffu, best, o));
  nan = __any_sync(0xffffffffu, nan);
  if (lane == 0) {
    warps_best[warp] = best;
    warps_nan[warp] = nan ? 1 : 0;
  }
  __syncthreads();
  if (tid != 0) return;
  for (int w = 1; w < kThreads / 32; ++w) {
    best = max(best, warps_best[w]);
    nan = nan || warps_nan[w] != 0;
  }
  GreedyChoiceWorkspace* ws = p.workspace;
  atomicMax(reinterpret_cast<unsigned long long*>(&ws->best), static_cast<unsigned long long>(best));
  if (nan) atomicOr(&ws->has_nan, 1u);
  __threadfence();  // the CTA's best is in before its ticket
  if (atomicAdd(&ws->arrived, 1u) != gridDim.x - 1) return;
  __threadfence();
  // The last CTA: every other CTA's best is in. Read and reset (the next launch finds zeros).
  const uint64_t all = atomicExch(reinterpret_cast<unsigned long long*>(&ws->best), 0ull);
  const uint32_t any_nan = atomicExch(&ws->has_nan, 0u);
  ws->arrived = 0u;
  p.out[0] = all == 0 ? 0 : int64_t(~uint32_t(all));  // 0: no id below vocab (cannot happen for V >= 1)
  p.out[1] = any_nan != 0 ? 1 : 0;
}

}  // namespace

Status greedy_choice_cuda(const GreedyChoiceParams& p, void* stream) {
  if (p.vocab < 1 || p.vocab > kGreedyChoiceMaxVocab || !p.logits || !p.out || !p.workspace ||
      p.forbidden_count < 0 || (p.forbidden_count > 0 && !p.forbidden)) {
    return Status::kInvalidArgument;
  }
  const auto s = static_cast<cudaStream_t>(stream);
  const unsigned ctas = static_cast<unsigned>((p.vocab + kSlice - 1) / kSlice);
  auto launch = [&](auto kernel) {
    kernel<<<ctas, kThreads, 0, s>>>(p);
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
