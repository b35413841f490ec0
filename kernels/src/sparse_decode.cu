// sparse_decode_cuda: one CTA (128 threads) per (split, sequence x KV head). The CTA walks its part of the row
// list in tiles of 32 rows: thread pairs (head, row) take the q.k dot products (K rows read once into L1 and
// shared by the group's heads), one warp per head runs the online softmax over the tile (max and sum by warp
// shuffles, fp32), then threads over (head, dim) accumulate p * V with the row reads coalesced along D. Each
// split writes a normalised partial and its lse; lse_merge_cuda combines the splits.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>

#include "gsa/kernels/sparse_decode.h"

namespace gsa::kernels {
namespace {

constexpr int kThreads = 128;
constexpr int kTileRows = 32;

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <typename T>
__device__ __forceinline__ float dot8(const T* row, const float* q) {
  const uint4 raw = *reinterpret_cast<const uint4*>(row);
  const T* x = reinterpret_cast<const T*>(&raw);
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < 8; ++i) s = fmaf(float(x[i]), q[i], s);
  return s;
}

template <typename T, int D, int G>
__global__ void __launch_bounds__(kThreads) sparse_decode_kernel(const __grid_constant__ SparseDecodeParams p) {
  constexpr int kPerThread = (G * D + kThreads - 1) / kThreads;
  __shared__ __align__(16) float s_q[G][D];
  __shared__ float s_p[G][kTileRows];
  __shared__ int32_t s_rows[kTileRows];
  __shared__ float s_m[G], s_l[G], s_corr[G];

  const int split = blockIdx.x, bh = blockIdx.y;
  const int b = bh / p.kv_heads, kv = bh % p.kv_heads;
  const int per_split = (p.max_keys + p.splits - 1) / p.splits;
  const int first = split * per_split, last = min(p.max_keys, first + per_split);
  const int32_t* list = p.key_rows + int64_t(bh) * p.max_keys;
  const T* q = static_cast<const T*>(p.q) + b * p.q_stride[0] + int64_t(kv) * G * p.q_stride[1];
  const T* k = static_cast<const T*>(p.k) + b * p.kv_stride[0] + kv * p.kv_stride[1];
  const T* v = static_cast<const T*>(p.v) + b * p.kv_stride[0] + kv * p.kv_stride[1];
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;

  for (int i = tid; i < G * D; i += kThreads) s_q[i / D][i % D] = float(q[(i / D) * p.q_stride[1] + i % D]);
  if (tid < G) {
    s_m[tid] = -INFINITY;
    s_l[tid] = 0.f;
  }
  float acc[kPerThread];
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) acc[j] = 0.f;
  __syncthreads();

  for (int base = first; base < last; base += kTileRows) {
    if (tid < kTileRows) s_rows[tid] = base + tid < last ? list[base + tid] : -1;
    __syncthreads();
    for (int i = tid; i < G * kTileRows; i += kThreads) {
      const int h = i / kTileRows, j = i % kTileRows;
      const int32_t r = s_rows[j];
      float s = -INFINITY;
      if (r >= 0) {
        const T* row = k + int64_t(r) * p.kv_stride[2];
        float dot = 0.f;
#pragma unroll
        for (int d = 0; d < D; d += 8) dot += dot8(row + d, &s_q[h][d]);
        s = dot * p.scale;
      }
      s_p[h][j] = s;
    }
    __syncthreads();
    for (int h = warp; h < G; h += kThreads / 32) {
      const float s = s_p[h][lane];
      const float m_new = fmaxf(s_m[h], warp_max(s));
      const float base_m = m_new == -INFINITY ? 0.f : m_new;
      const float prob = expf(s - base_m);  // -inf -> 0
      const float sum = warp_sum(prob);
      s_p[h][lane] = prob;
      if (lane == 0) {
        const float corr = expf(s_m[h] - base_m);
        s_corr[h] = corr;
        s_l[h] = s_l[h] * corr + sum;
        s_m[h] = m_new;
      }
    }
    __syncthreads();
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      const int i = tid + j * kThreads;
      if (i < G * D) {
        const int h = i / D, d = i % D;
        float a = acc[j] * s_corr[h];
        for (int t = 0; t < kTileRows; ++t) {
          const int32_t r = s_rows[t];
          if (r >= 0) a = fmaf(s_p[h][t], float(v[int64_t(r) * p.kv_stride[2] + d]), a);
        }
        acc[j] = a;
      }
    }
    __syncthreads();
  }

  const int64_t rows_total = int64_t(p.batch) * p.q_heads;
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const int i = tid + j * kThreads;
    if (i < G * D) {
      const int h = i / D, d = i % D;
      const int64_t row = int64_t(b) * p.q_heads + kv * G + h;
      p.partial_out[(split * rows_total + row) * D + d] = s_l[h] > 0.f ? acc[j] / s_l[h] : 0.f;
    }
  }
  if (tid < G) {
    const int64_t row = int64_t(b) * p.q_heads + kv * G + tid;
    p.partial_lse[split * rows_total + row] = s_l[tid] > 0.f ? s_m[tid] + logf(s_l[tid]) : -INFINITY;
  }
}

template <typename T, int D>
Status launch_group(const SparseDecodeParams& p, cudaStream_t stream) {
  const dim3 grid(p.splits, p.batch * p.kv_heads);
  switch (p.q_heads / p.kv_heads) {
    case 1:
      sparse_decode_kernel<T, D, 1><<<grid, kThreads, 0, stream>>>(p);
      break;
    case 2:
      sparse_decode_kernel<T, D, 2><<<grid, kThreads, 0, stream>>>(p);
      break;
    case 4:
      sparse_decode_kernel<T, D, 4><<<grid, kThreads, 0, stream>>>(p);
      break;
    case 8:
      sparse_decode_kernel<T, D, 8><<<grid, kThreads, 0, stream>>>(p);
      break;
    default:
      return Status::kInvalidArgument;
  }
  return cudaGetLastError() == cudaSuccess ? Status::kOk : Status::kCudaError;
}

}  // namespace

Status sparse_decode_cuda(const SparseDecodeParams& p, void* stream) {
  const int group = p.kv_heads > 0 ? p.q_heads / p.kv_heads : 0;
  if (p.batch < 1 || p.kv_heads < 1 || p.q_heads % p.kv_heads != 0 ||
      (group != 1 && group != 2 && group != 4 && group != 8) || (p.head_dim != 64 && p.head_dim != 128) ||
      p.max_keys < 0 || p.splits < 1 || !p.q || !p.k || !p.v || (p.max_keys > 0 && !p.key_rows) || !p.partial_out ||
      !p.partial_lse || !p.out || !p.lse) {
    return Status::kInvalidArgument;
  }
  auto s = static_cast<cudaStream_t>(stream);
  const bool bf16 = p.dtype == DType::kBFloat16;
  Status status;
  if (p.head_dim == 64)
    status = bf16 ? launch_group<__nv_bfloat16, 64>(p, s) : launch_group<__half, 64>(p, s);
  else
    status = bf16 ? launch_group<__nv_bfloat16, 128>(p, s) : launch_group<__half, 128>(p, s);
  if (status != Status::kOk) return status;
  LseMergeParams merge;
  merge.partial_out = p.partial_out;
  merge.partial_lse = p.partial_lse;
  merge.out = p.out;
  merge.lse = p.lse;
  merge.num_parts = p.splits;
  merge.rows = int64_t(p.batch) * p.q_heads;
  merge.dim = p.head_dim;
  return lse_merge_cuda(merge, stream);
}

}  // namespace gsa::kernels
