// sparse_decode_cuda: one CTA (128 threads) per (split, sequence x KV head). The CTA's threads form row teams of
// D / 8 lanes (16 for D 128, 8 for D 64); a lane owns 8 dims of a row. Each team streams its own share of the
// split's rows: per step it issues the 16-byte K and V loads of kUnroll rows before using any (so every lane keeps
// 2 x kUnroll loads in flight and nothing waits on shared memory), takes the q.k partial dots for the G query
// heads of the group from registers, sums them over the team by shuffles, and folds the rows into its own online
// softmax state (running max and denominator per head, 8 dims of G unnormalised outputs) in registers, in base 2
// with log2(e) folded into q. At the end the teams' states merge through shared memory; each split writes a
// normalised partial and its lse, and lse_merge_cuda combines the splits. Warps step through the rows together so
// the shuffles never diverge.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>

#include "dispatch.cuh"
#include "row_team.cuh"

#include "gsa/kernels/sparse_decode.h"

namespace gsa::kernels {
namespace {

using detail::dot8;
using detail::team_sum;
using detail::to_floats;

constexpr int kThreads = 128;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;


template <typename T, int D, int G>
__global__ void __launch_bounds__(kThreads) sparse_decode_kernel(const __grid_constant__ SparseDecodeParams p) {
  constexpr int kTeam = D / 8;                   // lanes per row
  constexpr int kTeamsPerWarp = 32 / kTeam;
  constexpr int kTeams = kThreads / kTeam;
  constexpr int kUnroll = G >= 8 ? 2 : 4;        // rows per team per step
  constexpr int kWarpRows = kTeamsPerWarp * kUnroll;
  __shared__ float s_acc[kTeams][G][D];
  __shared__ float s_m[kTeams][G], s_l[kTeams][G];

  const int split = blockIdx.x, bh = blockIdx.y;
  const int b = bh / p.kv_heads, kv = bh % p.kv_heads;
  const int32_t range_begin = p.range_begin != nullptr ? p.range_begin[b] : 0;
  const int range_rows = p.range_begin != nullptr ? max(0, p.range_end[b] - range_begin) : 0;
  const int total = p.max_keys + range_rows;
  const int per_split = (total + p.splits - 1) / p.splits;
  const int first = split * per_split, last = min(total, first + per_split);
  const int32_t* list = p.key_rows + int64_t(bh) * p.max_keys;
  const int tid = threadIdx.x, warp = tid / 32, team = tid / kTeam, lane = tid % kTeam;
  const int team_in_warp = (tid % 32) / kTeam;

  float qr[G][8];
  {
    const T* q = static_cast<const T*>(p.q) + b * p.q_stride[0] + int64_t(kv) * G * p.q_stride[1] + lane * 8;
#pragma unroll
    for (int h = 0; h < G; ++h) {
      to_floats<T>(*reinterpret_cast<const uint4*>(q + h * p.q_stride[1]), qr[h]);
#pragma unroll
      for (int i = 0; i < 8; ++i) qr[h][i] *= p.scale * kLog2e;
    }
  }
  const T* k = p.k.head<const T>(b, kv, p.kv_heads) + lane * 8;
  const T* v = p.v.head<const T>(b, kv, p.kv_heads) + lane * 8;
  float m[G], l[G], acc[G][8];
#pragma unroll
  for (int h = 0; h < G; ++h) {
    m[h] = -INFINITY;
    l[h] = 0.f;
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[h][i] = 0.f;
  }

  for (int base = first + warp * kWarpRows; base < last; base += (kThreads / 32) * kWarpRows) {
    int32_t r[kUnroll];
    uint4 kraw[kUnroll], vraw[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int j = base + team_in_warp * kUnroll + u;
      r[u] = j >= last ? -1 : j < p.max_keys ? __ldg(list + j) : range_begin + (j - p.max_keys);
      kraw[u] = vraw[u] = make_uint4(0, 0, 0, 0);
      if (r[u] >= 0) {
        kraw[u] = __ldg(reinterpret_cast<const uint4*>(k + int64_t(r[u]) * p.k.row_stride));
        vraw[u] = __ldg(reinterpret_cast<const uint4*>(v + int64_t(r[u]) * p.v.row_stride));
      }
    }
    float s[kUnroll][G];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      float x[8];
      to_floats<T>(kraw[u], x);
#pragma unroll
      for (int h = 0; h < G; ++h) {
        const float dot = team_sum<kTeam>(dot8(x, qr[h]));
        s[u][h] = r[u] >= 0 ? dot : -INFINITY;
      }
    }
#pragma unroll
    for (int h = 0; h < G; ++h) {
      float mx = m[h];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) mx = fmaxf(mx, s[u][h]);
      if (mx == -INFINITY) continue;  // nothing seen yet by this team
      const float corr = exp2f(m[h] - mx);
      m[h] = mx;
      l[h] *= corr;
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[h][i] *= corr;
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const float prob = exp2f(s[u][h] - mx);  // -inf -> 0
        l[h] += prob;
        if (r[u] >= 0) {
          float x[8];
          to_floats<T>(vraw[u], x);
#pragma unroll
          for (int i = 0; i < 8; ++i) acc[h][i] = fmaf(prob, x[i], acc[h][i]);
        }
      }
    }
  }

#pragma unroll
  for (int h = 0; h < G; ++h) {
#pragma unroll
    for (int i = 0; i < 8; ++i) s_acc[team][h][lane * 8 + i] = acc[h][i];
    if (lane == 0) {
      s_m[team][h] = m[h];
      s_l[team][h] = l[h];
    }
  }
  __syncthreads();
  const int64_t rows_total = int64_t(p.batch) * p.q_heads;
  for (int i = tid; i < G * D; i += kThreads) {
    const int h = i / D, d = i % D;
    float top = -INFINITY;
#pragma unroll
    for (int t = 0; t < kTeams; ++t) top = fmaxf(top, s_m[t][h]);
    float num = 0.f, den = 0.f;
    if (top != -INFINITY) {
#pragma unroll
      for (int t = 0; t < kTeams; ++t) {
        const float w = exp2f(s_m[t][h] - top);
        num = fmaf(w, s_acc[t][h][d], num);
        den = fmaf(w, s_l[t][h], den);
      }
    }
    const int64_t row = int64_t(b) * p.q_heads + kv * G + h;
    p.partial_out[(split * rows_total + row) * D + d] = den > 0.f ? num / den : 0.f;
    if (d == 0) p.partial_lse[split * rows_total + row] = den > 0.f ? (top + log2f(den)) * kLn2 : -INFINITY;
  }
}

}  // namespace

Status sparse_decode_cuda(const SparseDecodeParams& p, void* stream) {
  const int group = p.kv_heads > 0 ? p.q_heads / p.kv_heads : 0;
  if (p.batch < 1 || p.kv_heads < 1 || p.q_heads % p.kv_heads != 0 ||
      (group != 1 && group != 2 && group != 4 && group != 8) || (p.head_dim != 64 && p.head_dim != 128) ||
      p.max_keys < 0 || p.splits < 1 || !p.q || p.k.empty() || p.v.empty() || (p.max_keys > 0 && !p.key_rows) || !p.partial_out ||
      !p.partial_lse || !p.out || !p.lse || (p.range_begin == nullptr) != (p.range_end == nullptr)) {
    return Status::kInvalidArgument;
  }
  auto s = static_cast<cudaStream_t>(stream);
  Status status = detail::with_type_and_dim(p, [&](auto type, auto dim) {
    using T = typename decltype(type)::type;
    return detail::with_group(p.q_heads / p.kv_heads, [&](auto group) {
      sparse_decode_kernel<T, dim.value, group.value><<<dim3(p.splits, p.batch * p.kv_heads), kThreads, 0, s>>>(p);
      return cudaGetLastError() == cudaSuccess ? Status::kOk : Status::kCudaError;
    });
  });
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
