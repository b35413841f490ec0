// selected_attention_backward_cuda: one CTA (128 threads) per (split, query x KV head), the row-team layout of
// sparse_decode.cu (teams of D / 8 lanes, a lane owns 8 dims of a row, kUnroll rows' K and V loads in flight per
// team). Each lane keeps its 8 dims of the G query heads' q (scaled), d_out and a dq accumulator in registers;
// per row the team sums q.k and d_out.v over its lanes by shuffles, forms p and ds for the G heads, adds
// ds k to dq in registers and adds its 8 dims of scale sum_h ds q and sum_h p d_out to the row's dk and dv with
// two 16-byte atomic adds each (rows are shared between queries). At the end the teams' dq partials meet in
// shared memory and are added to dq (atomically: the splits of a list add to the same dq).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>

#include "dispatch.cuh"
#include "gsa/kernels/selected_attention.h"
#include "row_team.cuh"

namespace gsa::kernels {
namespace {

using detail::dot8;
using detail::team_sum;
using detail::to_floats;

constexpr int kThreads = 128;
constexpr float kLog2e = 1.4426950408889634f;

// Adds 8 floats to dst[0..7] (16-byte aligned).
__device__ __forceinline__ void add8(float* dst, const float (&x)[8]) {
#if __CUDA_ARCH__ >= 900
  atomicAdd(reinterpret_cast<float4*>(dst), make_float4(x[0], x[1], x[2], x[3]));
  atomicAdd(reinterpret_cast<float4*>(dst + 4), make_float4(x[4], x[5], x[6], x[7]));
#else
#pragma unroll
  for (int i = 0; i < 8; ++i) atomicAdd(dst + i, x[i]);
#endif
}

template <typename T, int D, int G>
__global__ void __launch_bounds__(kThreads)
    selected_attention_backward_kernel(const __grid_constant__ SelectedAttentionBackwardParams p) {
  constexpr int kTeam = D / 8;
  constexpr int kTeamsPerWarp = 32 / kTeam;
  constexpr int kTeams = kThreads / kTeam;
  constexpr int kUnroll = G >= 8 ? 1 : 2;  // G 8 with 2 rows in flight spills
  constexpr int kWarpRows = kTeamsPerWarp * kUnroll;
  __shared__ float s_dq[kTeams][G][D];

  const int split = blockIdx.x, nh = blockIdx.y;
  const int n = nh / p.kv_heads, kv = nh % p.kv_heads;
  const int per_split = (p.max_keys + p.splits - 1) / p.splits;
  const int first = split * per_split, last = min(p.max_keys, first + per_split);
  const int32_t* list = p.key_rows + int64_t(nh) * p.max_keys;
  const int tid = threadIdx.x, warp = tid / 32, team = tid / kTeam, lane = tid % kTeam;
  const int team_in_warp = (tid % 32) / kTeam;

  float qs[G][8], dor[G][8], dq[G][8], lse[G], delta[G];
  {
    const T* q = static_cast<const T*>(p.q) + n * p.q_stride[0] + int64_t(kv) * G * p.q_stride[1] + lane * 8;
    const int64_t row0 = int64_t(n) * p.q_heads + kv * G;
#pragma unroll
    for (int h = 0; h < G; ++h) {
      to_floats<T>(*reinterpret_cast<const uint4*>(q + h * p.q_stride[1]), qs[h]);
      const float4* d = reinterpret_cast<const float4*>(p.d_out + (row0 + h) * D + lane * 8);
      const float4 a = __ldg(d), b = __ldg(d + 1);
      dor[h][0] = a.x, dor[h][1] = a.y, dor[h][2] = a.z, dor[h][3] = a.w;
      dor[h][4] = b.x, dor[h][5] = b.y, dor[h][6] = b.z, dor[h][7] = b.w;
      lse[h] = __ldg(p.lse + row0 + h);
      delta[h] = __ldg(p.delta + row0 + h);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        qs[h][i] *= p.scale;
        dq[h][i] = 0.f;
      }
    }
  }
  const T* k = p.k.head<const T>(n, kv, p.kv_heads) + lane * 8;
  const T* v = p.v.head<const T>(n, kv, p.kv_heads) + lane * 8;
  float* dk = p.dk.head<float>(n, kv, p.kv_heads) + lane * 8;
  float* dv = p.dv.head<float>(n, kv, p.kv_heads) + lane * 8;

  for (int base = first + warp * kWarpRows; base < last; base += (kThreads / 32) * kWarpRows) {
    int32_t r[kUnroll];
    uint4 kraw[kUnroll], vraw[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int j = base + team_in_warp * kUnroll + u;
      r[u] = j < last ? __ldg(list + j) : -1;
      kraw[u] = vraw[u] = make_uint4(0, 0, 0, 0);
      if (r[u] >= 0) {
        kraw[u] = __ldg(reinterpret_cast<const uint4*>(k + int64_t(r[u]) * p.k.row_stride));
        vraw[u] = __ldg(reinterpret_cast<const uint4*>(v + int64_t(r[u]) * p.v.row_stride));
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      float x[8], y[8], dk_part[8], dv_part[8];
      to_floats<T>(kraw[u], x);
      to_floats<T>(vraw[u], y);
#pragma unroll
      for (int i = 0; i < 8; ++i) dk_part[i] = dv_part[i] = 0.f;
#pragma unroll
      for (int h = 0; h < G; ++h) {
        const float s = team_sum<kTeam>(dot8(x, qs[h]));
        const float dp = team_sum<kTeam>(dot8(y, dor[h]));
        const float prob = r[u] >= 0 && lse[h] != -INFINITY ? exp2f((s - lse[h]) * kLog2e) : 0.f;
        const float ds = prob * (dp - delta[h]);
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          dq[h][i] = fmaf(ds, x[i], dq[h][i]);
          dk_part[i] = fmaf(ds, qs[h][i], dk_part[i]);
          dv_part[i] = fmaf(prob, dor[h][i], dv_part[i]);
        }
      }
      if (r[u] >= 0) {
        add8(dk + int64_t(r[u]) * p.dk.row_stride, dk_part);
        add8(dv + int64_t(r[u]) * p.dv.row_stride, dv_part);
      }
    }
  }

#pragma unroll
  for (int h = 0; h < G; ++h) {
#pragma unroll
    for (int i = 0; i < 8; ++i) s_dq[team][h][lane * 8 + i] = dq[h][i];
  }
  __syncthreads();
  for (int i = tid; i < G * D; i += kThreads) {
    const int h = i / D, d = i % D;
    float sum = 0.f;
#pragma unroll
    for (int t = 0; t < kTeams; ++t) sum += s_dq[t][h][d];
    atomicAdd(p.dq + (int64_t(n) * p.q_heads + kv * G + h) * D + d, sum * p.scale);
  }
}

}  // namespace

Status selected_attention_backward_cuda(const SelectedAttentionBackwardParams& p, void* stream) {
  const int group = p.kv_heads > 0 ? p.q_heads / p.kv_heads : 0;
  if (p.num_queries < 0 || p.kv_heads < 1 || p.q_heads % p.kv_heads != 0 ||
      (group != 1 && group != 2 && group != 4 && group != 8) || (p.head_dim != 64 && p.head_dim != 128) ||
      p.max_keys < 0 || p.splits < 1 || !p.q || p.k.empty() || p.v.empty() || p.dk.empty() || p.dv.empty() ||
      (p.max_keys > 0 && !p.key_rows) || !p.d_out || !p.lse || !p.delta || !p.dq) {
    return Status::kInvalidArgument;
  }
  if (p.num_queries == 0 || p.max_keys == 0) return Status::kOk;
  auto s = static_cast<cudaStream_t>(stream);
  const Status status = detail::with_type_and_dim(p, [&](auto type, auto dim) {
    using T = typename decltype(type)::type;
    return detail::with_group(p.q_heads / p.kv_heads, [&](auto group) {
      selected_attention_backward_kernel<T, dim.value, group.value>
          <<<dim3(p.splits, p.num_queries * p.kv_heads), kThreads, 0, s>>>(p);
      return Status::kOk;
    });
  });
  if (status != Status::kOk) return status;
  return cudaGetLastError() == cudaSuccess ? Status::kOk : Status::kCudaError;
}

}  // namespace gsa::kernels
