// sparse_decode_cuda: one CTA (128 threads) per (split, sequence x KV head). The CTA's threads form row teams of
// D / 8 lanes (16 for D 128, 8 for D 64); a lane owns 8 dims of a row. Each team streams its own share of the
// split's rows: per step it issues the 16-byte K and V loads of kUnroll rows before using any (so every lane keeps
// 2 x kUnroll loads in flight and nothing waits on shared memory), takes the q.k partial dots for the G query
// heads of the group from registers, sums them over the team by shuffles, and folds the rows into its own online
// softmax state (running max and denominator per head, 8 dims of G unnormalised outputs) in registers, in base 2
// with log2(e) folded into q. At the end the teams' states merge through shared memory; with one split the CTA
// writes out / lse (/ out_half) itself, else a normalised partial and its lse, and the last CTA of the (sequence,
// KV head) to finish merges the splits (last_split_done, merge_splits: one launch, no lse_merge_cuda; the
// tensor-core kernel stages the partials through its idle K/V tiles, merge_splits_staged). Warps step through the
// rows together so the shuffles never diverge.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "dispatch.cuh"
#include "pdl.cuh"
#include "row_team.cuh"
#include "sparse_attention_device.cuh"

#include "gsa/kernels/sparse_decode.h"

namespace gsa::kernels {
namespace {

using detail::dot8;
using detail::kLog2e;
using detail::team_max;
using detail::team_sum;
using detail::to_floats;

constexpr int kThreads = 128;
constexpr float kLn2 = 0.6931471805599453f;

// The rows split blockIdx.x of (sequence, KV head) blockIdx.y reads: its share of the list entries (a
// ceil(R / splits) slice), then its share of the generated range (a ceil(rows / splits) slice), numbered 0 ..
// count - 1 in that order; with one split, the list then the range, as before. The list's share depends on the
// kernel parameters alone (split_list), so a kernel can issue its first list loads before it loads the range
// bounds (take_range) and wait for both at once; a share of the concatenation made them wait a round trip for the
// bounds. ptxas schedules a value's first use where the source puts it, and waits there: take_range belongs after
// the list loads in the source.
struct SplitRows {
  int b, kv;
  int list_count;       // list entries the split takes
  int32_t list_at;      // index of its first list entry in p.key_rows (an index, not a pointer: one register
                        // fewer, where the groups of 2 and 8 sit at their bound; sparse_decode_cuda checks that
                        // B * Hkv * R fits in 32 bits)
  int count = 0;        // rows it takes: list_count entries, then count - list_count rows of the range (take_range)
  int32_t range_first = 0;  // cache row of its first range row (take_range)

  // Loads the range bounds of sequence b and sets count and range_first (no range: count = list_count).
  __device__ __forceinline__ void take_range(const SparseDecodeParams& p) {
    const int32_t begin = p.range_begin != nullptr ? p.range_begin[b] : 0;
    const int rows = p.range_begin != nullptr ? max(0, p.range_end[b] - begin) : 0;
    const SplitShare share = split_share(blockIdx.x, p.splits, rows);
    range_first = begin + share.first;
    count = list_count + share.count;
  }
  // Cache row of entry j (-1: none or a hole). A coherent (L2) load: the list comes from the kernel launched just
  // before, which may run until this kernel's wait (pdl.cuh); a non-coherent load could be scheduled ahead of it.
  __device__ __forceinline__ int32_t row(const SparseDecodeParams& p, int j) const {
    return j >= count ? -1 : j < list_count ? __ldcg(p.key_rows + (list_at + j)) : range_first + (j - list_count);
  }
  // The list entries of j[0..n), loaded together before any is used: one round trip for the n (the tensor-core
  // kernel's stages). row() in a loop compiles to a branch around each load, so each waits for the one before: a
  // thread's eight loads of a 64-row stage went out in turn, half the kernel's stall samples at 128K
  // (docs/PERFORMANCE.md). Entries past the share read a valid entry of it (select drops them). The SIMT kernel
  // keeps row(): batched, its groups of one query head spill at their register bound.
  template <int n>
  __device__ __forceinline__ void load_entries(const SparseDecodeParams& p, const int (&j)[n],
                                               int32_t (&entry)[n]) const {
#pragma unroll
    for (int i = 0; i < n; ++i) entry[i] = -1;
    if (list_count > 0) {
#pragma unroll
      for (int i = 0; i < n; ++i) entry[i] = __ldcg(p.key_rows + (list_at + min(j[i], list_count - 1)));
    }
  }
  // The cache rows of j[0..n) (as row()) from their loaded entries (after take_range).
  template <int n>
  __device__ __forceinline__ void select(const int (&j)[n], const int32_t (&entry)[n], int32_t (&out)[n]) const {
#pragma unroll
    for (int i = 0; i < n; ++i) {
      out[i] = j[i] >= count ? -1 : j[i] < list_count ? entry[i] : range_first + (j[i] - list_count);
    }
  }
};

// The split's list share; count and range_first wait for take_range.
__device__ __forceinline__ SplitRows split_list(const SparseDecodeParams& p) {
  SplitRows r;
  const int bh = blockIdx.y;
  r.b = bh / p.kv_heads;
  r.kv = bh % p.kv_heads;
  const SplitShare share = split_share(blockIdx.x, p.splits, p.max_keys);
  r.list_count = share.count;
  r.list_at = bh * p.max_keys + share.first;
  return r;
}

__device__ __forceinline__ SplitRows split_rows(const SparseDecodeParams& p) {
  SplitRows r = split_list(p);
  r.take_range(p);
  return r;
}

// Merges the CTA's kParts partial states (shared memory: unnormalised outputs acc[part][G][D], running maxima
// m[part][G] and denominators l[part][G], base 2) into this split's normalised output and lse (natural log): with
// one split straight into out, lse and out_half (lse_merge of one part is the identity: exp(0) = 1, log(1) = 0),
// else into split blockIdx.x's rows of the partial workspaces. Every thread of the CTA calls it after a barrier.
template <typename T, int D, int G, int kParts>
__device__ __forceinline__ void write_split_partial(const SparseDecodeParams& p, const SplitRows& r, const float* acc,
                                                    const float* m, const float* l) {
  const int64_t rows_total = int64_t(p.batch) * p.q_heads;
  const bool direct = p.splits == 1;
  float* out = direct ? p.out : p.partial_out + blockIdx.x * rows_total * D;  // [B * Hq, D]; out may be null
  float* lse = direct ? p.lse : p.partial_lse + blockIdx.x * rows_total;      // [B * Hq]
  T* half = direct ? static_cast<T*>(p.out_half) : nullptr;                   // [B * Hq, D] or null
  for (int i = threadIdx.x; i < G * D; i += blockDim.x) {
    const int h = i / D, d = i % D;
    float top = -INFINITY;
#pragma unroll
    for (int t = 0; t < kParts; ++t) top = fmaxf(top, m[t * G + h]);
    float num = 0.f, den = 0.f;
    if (top != -INFINITY) {
#pragma unroll
      for (int t = 0; t < kParts; ++t) {
        const float w = exp2f(m[t * G + h] - top);
        num = fmaf(w, acc[(t * G + h) * D + d], num);
        den = fmaf(w, l[t * G + h], den);
      }
    }
    const int64_t row = r.b * p.q_heads + r.kv * G + h;  // 32-bit: sparse_decode_cuda checks B * Hq
    const float o = den > 0.f ? num / den : 0.f;
    if (out != nullptr) out[row * D + d] = o;
    if (half != nullptr) half[row * D + d] = T(o);  // round to nearest even, as at::Tensor::to
    if (d == 0) lse[row] = den > 0.f ? (top + log2f(den)) * kLn2 : -INFINITY;
  }
}

// Split-K completion (splits > 1): true in the one CTA that finishes (sequence, KV head) blockIdx.y last; every
// split's partial is then visible to all of its threads. The ticket protocol: each thread fences its partial stores
// to device scope (release), the CTA meets at a barrier, thread 0 takes a ticket with atomicInc(ticket, splits - 1)
// -- it returns 0 .. splits - 1 in completion order and wraps the counter back to 0 on the last ticket, so every
// launch that completes leaves the workspace zero for the next call or graph replay without a memset -- and fences
// again (acquire) before the barrier that hands its verdict to the CTA. No CTA waits for another (no spinning), so
// any residency and launch order is safe. The merging CTA reads the partials through L2 (ld.cg): never through its
// L1 or the read-only path, which may hold no line of data other SMs wrote during this launch.
__device__ __forceinline__ bool last_split_done(const SparseDecodeParams& p) {
  __shared__ int s_last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    const unsigned last = unsigned(p.splits - 1);
    s_last = atomicInc(reinterpret_cast<unsigned*>(p.tickets) + blockIdx.y, last) == last;
    __threadfence();
  }
  __syncthreads();
  return s_last != 0;
}

// Four consecutive outputs of a row at element offset `at`: fp32 to out, rounded to T to half (either may be null;
// both 16-byte aligned tensors with rows of D % 4 == 0 elements).
template <typename T>
__device__ __forceinline__ void store4(float* out, T* half, int64_t at, const float (&x)[4]) {
  if (out != nullptr) *reinterpret_cast<float4*>(out + at) = make_float4(x[0], x[1], x[2], x[3]);
  if (half != nullptr) {
    struct alignas(8) Four {
      T e[4];
    } h;
#pragma unroll
    for (int i = 0; i < 4; ++i) h.e[i] = T(x[i]);
    *reinterpret_cast<Four*>(half + at) = h;
  }
}

// The split merge's lse pass (merge_splits, merge_splits_staged): the merged lse of each of the group's G heads
// (first query-head row row0) into s_lse and p.lse; with `kept`, every part's lse of head h also into
// kept[s * G + h] (read back from there by the lane that stored it). Every thread of the CTA calls it.
template <int G>
__device__ __forceinline__ void merge_lse(const SparseDecodeParams& p, int64_t row0, float* s_lse, float* kept) {
  const int lane = threadIdx.x % 32;
  const int64_t rows_total = int64_t(p.batch) * p.q_heads;
  const float* part_lse = p.partial_lse + row0;  // part s, head h: part_lse[s * rows_total + h]
  for (int h = threadIdx.x / 32; h < G; h += kThreads / 32) {
    const float first = lane < p.splits ? __ldcg(part_lse + lane * rows_total + h) : -INFINITY;
    if (kept != nullptr && lane < p.splits) kept[lane * G + h] = first;
    float top = first;
    for (int s = lane + 32; s < p.splits; s += 32) {
      const float x = __ldcg(part_lse + s * rows_total + h);
      if (kept != nullptr) kept[s * G + h] = x;
      top = fmaxf(top, x);
    }
    top = team_max<32>(top);
    float lse = -INFINITY;
    if (top != -INFINITY) {
      float sum = 0.f;
      sum += expf(first - top);  // lanes past the parts add exp(-inf) = 0, as lse_merge's add nothing
      for (int s = lane + 32; s < p.splits; s += 32) {
        sum += expf((kept != nullptr ? kept[s * G + h] : __ldcg(part_lse + s * rows_total + h)) - top);
      }
      lse = top + logf(team_sum<32>(sum));
    }
    if (lane == 0) {
      s_lse[h] = lse;
      p.lse[row0 + h] = lse;
    }
  }
}

// Run by the CTA that last_split_done chose: merges the splits' partials of (sequence, KV head) blockIdx.y's G
// query heads into out / lse / out_half with lse_merge.h's fp32 log-sum-exp merge, in lse_merge_cuda's order of
// operations so the bits equal the two-launch path's: per head one warp takes the parts' largest lse and the sum
// of exp(l_p - max), lanes strided over the parts (each summing its own in order) and reduced by xor shuffles
// (offsets 16 .. 1), lse = max + log(sum); then each thread sums w_p * o_p for 4 dims of one head over the parts
// in order, w_p = exp(l_p - lse), skipping empty parts (lse -inf). All-empty heads get out 0, lse -inf. The
// partials sit in L2: each lane keeps its first part's lse in a register for both passes, and the output pass
// issues the loads of kBatch parts before folding any (an empty part's row holds zeros, so reading it is safe;
// it is still skipped, as lse_merge skips it). kBatch changes no bits, only how many loads are in flight.
template <typename T, int D, int G, int kBatch>
__device__ __forceinline__ void merge_splits(const SparseDecodeParams& p, const SplitRows& r) {
  __shared__ float s_lse[G];
  const int64_t rows_total = int64_t(p.batch) * p.q_heads;
  const int64_t row0 = r.b * p.q_heads + r.kv * G;  // the group's first query-head row (B * Hq fits 32 bits)
  const float* part_lse = p.partial_lse + row0;              // part s, head h: part_lse[s * rows_total + h]
  merge_lse<G>(p, row0, s_lse, nullptr);
  __syncthreads();
  for (int i = threadIdx.x; i < G * D / 4; i += kThreads) {
    const int h = i / (D / 4), d = i % (D / 4) * 4;
    const float lse = s_lse[h];
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
    for (int s0 = 0; lse != -INFINITY && s0 < p.splits; s0 += kBatch) {
      float l[kBatch];
      float4 x[kBatch];
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const int64_t s = s0 + u;
        l[u] = -INFINITY;
        if (s < p.splits) {
          l[u] = __ldcg(part_lse + s * rows_total + h);
          x[u] = __ldcg(reinterpret_cast<const float4*>(p.partial_out + (s * rows_total + row0 + h) * D + d));
        }
      }
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        if (l[u] == -INFINITY) continue;  // empty part (or past the last): weight 0
        const float w = expf(l[u] - lse);
        acc[0] = fmaf(w, x[u].x, acc[0]);
        acc[1] = fmaf(w, x[u].y, acc[1]);
        acc[2] = fmaf(w, x[u].z, acc[2]);
        acc[3] = fmaf(w, x[u].w, acc[3]);
      }
    }
    store4<T>(p.out, static_cast<T*>(p.out_half), (row0 + h) * D + d, acc);
  }
}

// merge_splits with the partial outputs staged through shared memory (`area`, area_floats floats the CTA no
// longer needs, 16-byte aligned): the same arithmetic in the same order (the bits of lse_merge), but the outputs
// arrive by cp.async, `chunk` splits at a time into two alternating buffers, so one L2 round trip brings a chunk and
// overlaps the fold of the one before, where merge_splits waits a round trip per kBatch splits (99 splits at 1M
// tokens with the adaptive budget: 25 round trips). The lse pass keeps each part's lse in the area for the fold.
// Returns false, having done nothing, when the area cannot hold every part's lse and two chunks of 4 splits. Not
// inlined: inlined, the tensor-core kernel at D 64 took 96 registers instead of 80 (5 CTAs an SM instead of 6).
template <typename T, int D, int G>
__device__ __noinline__ bool merge_splits_staged(const SparseDecodeParams& p, const SplitRows& r, float* area,
                                                int area_floats) {
  constexpr int kPart = G * D;                                  // floats of a split's partial for the group
  constexpr int kOuts = (G * D / 4 + kThreads - 1) / kThreads;  // 4-dim outputs a thread
  const int splits = p.splits;
  const int capacity = (area_floats - splits * G) / (2 * kPart);  // splits a buffer holds
  if (capacity < 4) return false;
  const int chunk = min(splits, capacity);
  float* lse_of = area + 2 * chunk * kPart;  // [splits][G]: part s's lse of head h
  __shared__ float s_lse[G];
  const int tid = threadIdx.x;
  const int64_t rows_total = int64_t(p.batch) * p.q_heads;
  const int64_t row0 = r.b * p.q_heads + r.kv * G;  // the group's first query-head row (B * Hq fits 32 bits)
  const float* part_out = p.partial_out + row0 * D;          // part s: G * D floats at part_out + s * rows_total * D
  const int chunks = (splits + chunk - 1) / chunk;
  auto stage = [&](int c) {  // chunk c's partials into buffer c % 2 (through L2, as merge_splits' __ldcg)
    float* buffer = area + (c & 1) * chunk * kPart;
    const int s0 = c * chunk, n = min(chunk, splits - s0);
    for (int i = tid; i < n * (kPart / 4); i += kThreads) {
      const int s = s0 + i / (kPart / 4), e = i % (kPart / 4) * 4;
      detail::cp_async_16(buffer + 4 * i, part_out + s * rows_total * D + e, true);
    }
    detail::cp_async_commit();
  };
  stage(0);
  if (chunks > 1) stage(1);
  merge_lse<G>(p, row0, s_lse, lse_of);  // while the first chunks are on their way
  float acc[kOuts][4] = {};
  for (int c = 0; c < chunks; ++c) {
    if (c + 1 < chunks) {
      detail::cp_async_wait<1>();
    } else {
      detail::cp_async_wait<0>();
    }
    __syncthreads();  // chunk c from every thread's copies; at c = 0 also lse_of and s_lse
    const float* buffer = area + (c & 1) * chunk * kPart;
    const int s0 = c * chunk, n = min(chunk, splits - s0);
#pragma unroll
    for (int o = 0; o < kOuts; ++o) {
      const int i = tid + o * kThreads;
      if (i >= G * D / 4) continue;
      const int h = i / (D / 4), d = i % (D / 4) * 4;
      const float lse = s_lse[h];
      if (lse == -INFINITY) continue;
      for (int j = 0; j < n; ++j) {
        const float l = lse_of[(s0 + j) * G + h];
        if (l == -INFINITY) continue;  // empty part: weight 0, skipped as lse_merge skips it
        const float w = expf(l - lse);
        const float4 x = *reinterpret_cast<const float4*>(buffer + j * kPart + h * D + d);
        acc[o][0] = fmaf(w, x.x, acc[o][0]);
        acc[o][1] = fmaf(w, x.y, acc[o][1]);
        acc[o][2] = fmaf(w, x.z, acc[o][2]);
        acc[o][3] = fmaf(w, x.w, acc[o][3]);
      }
    }
    __syncthreads();  // buffer c % 2 is read: chunk c + 2 may overwrite it
    if (c + 2 < chunks) stage(c + 2);
  }
#pragma unroll
  for (int o = 0; o < kOuts; ++o) {
    const int i = tid + o * kThreads;
    if (i < G * D / 4) {
      const int h = i / (D / 4), d = i % (D / 4) * 4;
      store4<T>(p.out, static_cast<T*>(p.out_half), (row0 + h) * D + d, acc[o]);
    }
  }
  return true;
}

// The end of both kernels, after the barrier that publishes the CTA's merged states (shared memory, as
// write_split_partial reads them): this split's output, and the split merge when this CTA finishes last: staged
// through `stage_area` (stage_floats floats the CTA is done with) when given and large enough, else merge_splits
// (kBatch).
template <typename T, int D, int G, int kParts, int kBatch>
__device__ __forceinline__ void finish_split(const SparseDecodeParams& p, const SplitRows& r, const float* acc,
                                             const float* m, const float* l, float* stage_area = nullptr,
                                             int stage_floats = 0) {
  write_split_partial<T, D, G, kParts>(p, r, acc, m, l);
  if (p.splits > 1 && last_split_done(p)) {
    if (stage_area == nullptr || !merge_splits_staged<T, D, G>(p, r, stage_area, stage_floats)) {
      merge_splits<T, D, G, kBatch>(p, r);
    }
  }
}

// CTAs per SM the SIMT kernel reaches without the split merge (72, 96, ~160, ~216 registers for groups of 1, 2, 4,
// 8), passed to __launch_bounds__ so the merge's 8 batched loads cannot cost occupancy (without the bound ptxas
// gives groups of 2 114 registers, one CTA less per SM). The tensor-core kernel keeps no bound (shared memory
// limits it) and batches 4 loads: 80 / ~125 registers for D 64 / 128 as before the merge, where 8 spill at D 64.
template <int G>
constexpr int kSimtMinCtas = G == 1 ? 7 : G == 2 ? 5 : G == 4 ? 3 : 2;
constexpr int kSimtMergeBatch = 8, kMmaMergeBatch = 4;

template <typename T, int D, int G>
__global__ void __launch_bounds__(kThreads, kSimtMinCtas<G>)
    sparse_decode_kernel(const __grid_constant__ SparseDecodeParams p) {
  detail::wait_for_prior_grids();  // q, the cache rows and the lists come from the kernels before (pdl.cuh)
  detail::allow_dependent_launch();
  constexpr int kTeam = D / 8;                   // lanes per row
  constexpr int kTeamsPerWarp = 32 / kTeam;
  constexpr int kTeams = kThreads / kTeam;
  constexpr int kUnroll = G >= 8 ? 2 : 4;        // rows per team per step
  constexpr int kWarpRows = kTeamsPerWarp * kUnroll;
  __shared__ float s_acc[kTeams][G][D];
  __shared__ float s_m[kTeams][G], s_l[kTeams][G];

  const SplitRows rows = split_rows(p);
  const int b = rows.b, kv = rows.kv;
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

  for (int base = warp * kWarpRows; base < rows.count; base += (kThreads / 32) * kWarpRows) {
    int32_t r[kUnroll];
    uint4 kraw[kUnroll], vraw[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int j = base + team_in_warp * kUnroll + u;
      r[u] = rows.row(p, j);
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
  finish_split<T, D, G, kTeams, kSimtMergeBatch>(p, rows, &s_acc[0][0][0], &s_m[0][0], &s_l[0][0]);
}

// Shared memory of sparse_decode_mma_kernel: Q [16, D], K and V [2 stages][kMmaRows, D] (swizzled tiles of
// sparse_attention_device.cuh), the cache row of each staged row (-1: none); after the loop the K and V stages
// hold the warps' partial states for the final merge.
constexpr int kMmaRows = 64;  // rows per stage: 16 per warp
// CTAs per SM the tensor-core kernel's shared memory allows at D 64 (6; 35 KiB each), passed to __launch_bounds__ so
// registers (80 a thread) do not lower it; at D 128 shared memory allows 3 and registers are free.
template <int D>
constexpr int kMmaMinCtas = D == 64 ? 6 : 1;
template <int D>
constexpr size_t mma_smem_bytes(size_t elem) {
  return (16 * D + 4 * kMmaRows * D) * elem + 2 * kMmaRows * sizeof(int32_t);
}

template <typename T, int D, int G>
__global__ void __launch_bounds__(kThreads, kMmaMinCtas<D>)
    sparse_decode_mma_kernel(const __grid_constant__ SparseDecodeParams p, bool staged_merge) {
  detail::wait_for_prior_grids();  // as sparse_decode_kernel
  detail::allow_dependent_launch();
  using detail::cp_async_16;
  using detail::swizzled;
  constexpr int kWarps = kThreads / 32, kChunks = D / 8;
  constexpr int kRowsPerPass = kThreads / kChunks;         // rows one pass of the CTA's copies covers
  constexpr int kRowsPerThread = kMmaRows / kRowsPerPass;  // a thread's rows of a stage (8 at D 128, 4 at D 64)
  static_assert(G <= 8 && kWarps * 16 == kMmaRows, "one m16 block of query heads, 16 rows per warp");
  extern __shared__ __align__(16) unsigned char smem[];
  T* s_q = reinterpret_cast<T*>(smem);
  T* s_k = s_q + 16 * D;
  T* s_v = s_k + 2 * kMmaRows * D;
  int32_t* s_row = reinterpret_cast<int32_t*>(s_v + 2 * kMmaRows * D);

  SplitRows rows = split_list(p);  // the range after the first list loads (below)
  const int b = rows.b, kv = rows.kv;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int head = lane / 4, quad = lane % 4;  // this lane's C-fragment row (query head) and column pair
  const T* k_head = p.k.head<const T>(b, kv, p.kv_heads);
  const T* v_head = p.v.head<const T>(b, kv, p.kv_heads);
  // A stage holds rows j0 .. j0 + kMmaRows - 1 of the split: thread t copies chunk t % kChunks of rows
  // t / kChunks + i * kRowsPerPass (stage_rows: their numbers), missing rows zero-filled and marked -1.
  auto stage_rows = [&](int j0, int (&j)[kRowsPerThread]) {
#pragma unroll
    for (int i = 0; i < kRowsPerThread; ++i) j[i] = j0 + tid / kChunks + i * kRowsPerPass;
  };
  auto copy_stage = [&](int stage, const int32_t (&row)[kRowsPerThread]) {
    T* k_tile = s_k + stage * kMmaRows * D;
    T* v_tile = s_v + stage * kMmaRows * D;
    const int chunk = tid % kChunks;
#pragma unroll
    for (int i = 0; i < kRowsPerThread; ++i) {
      const int r = tid / kChunks + i * kRowsPerPass, dst = swizzled<D>(r, chunk);
      const bool valid = row[i] >= 0;
      cp_async_16(k_tile + dst, valid ? k_head + int64_t(row[i]) * p.k.row_stride + chunk * 8 : k_head, valid);
      cp_async_16(v_tile + dst, valid ? v_head + int64_t(row[i]) * p.v.row_stride + chunk * 8 : v_head, valid);
      if (chunk == 0) s_row[stage * kMmaRows + r] = row[i];
    }
    detail::cp_async_commit();
  };
  auto load_stage = [&](int stage, int j0) {
    int j[kRowsPerThread];
    int32_t entry[kRowsPerThread], row[kRowsPerThread];
    stage_rows(j0, j);
    rows.load_entries(p, j, entry);
    rows.select(j, entry, row);
    copy_stage(stage, row);
  };

  {  // Q: rows 0..G-1 the group's heads, rows G..15 zero-filled, by cp.async in stage 0's group: its loads go out
     // with the first list loads and the range bounds' (Q copied through registers had its store wait for its load
     // ahead of the list's).
    constexpr int kQChunks = (16 * kChunks + kThreads - 1) / kThreads;  // a thread's 16-byte chunks of Q
    const T* q = static_cast<const T*>(p.q) + b * p.q_stride[0] + int64_t(kv) * G * p.q_stride[1];
#pragma unroll
    for (int u = 0; u < kQChunks; ++u) {
      const int i = tid + u * kThreads, r = i / kChunks, c = i % kChunks;
      if (i < 16 * kChunks) cp_async_16(s_q + swizzled<D>(r, c), q + min(r, G - 1) * p.q_stride[1] + c * 8, r < G);
    }
  }
  {  // Stage 0: its list loads, then the range bounds' (whatever the row count: no branch on the bounds ahead of
     // the list loads), one round trip for both. A split with no rows copies zeros and waits for them below, before
     // the stages become the merge's workspace.
    int j[kRowsPerThread];
    int32_t entry[kRowsPerThread], row[kRowsPerThread];
    stage_rows(0, j);
    rows.load_entries(p, j, entry);
    rows.take_range(p);
    rows.select(j, entry, row);
    copy_stage(0, row);
  }
  const int tiles = (rows.count + kMmaRows - 1) / kMmaRows;
  if (tiles == 0) {  // every thread's copies landed before the stages hold the merge's states (as the loop's barrier)
    detail::cp_async_wait<0>();
    __syncthreads();
  }

  const float scale2 = p.scale * kLog2e;
  float m = -INFINITY, l = 0.f;  // this lane's row (head): running max and its share of the denominator
  float acc[1][D / 8][4] = {};   // O fragments: n-tile j holds dims 8j + 2 quad, +1 (c0, c1; c2, c3 unused)
  for (int t = 0; t < tiles; ++t) {
    const int stage = t & 1;
    if (t + 1 < tiles) {
      load_stage(stage ^ 1, (t + 1) * kMmaRows);
      detail::cp_async_wait<1>();
    } else {
      detail::cp_async_wait<0>();
    }
    __syncthreads();
    const T* k_rows = s_k + (stage * kMmaRows + warp * 16) * D;  // 16w is a multiple of 8: same swizzle
    const int32_t* staged = s_row + stage * kMmaRows + warp * 16;
    float s[1][2][4] = {};
    detail::mma_rows_times_tile_t<D, 16, 1, T>(s, s_q, 0, k_rows);
    float x[2][2], mx = m;
#pragma unroll
    for (int n = 0; n < 2; ++n) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        x[n][e] = staged[8 * n + 2 * quad + e] >= 0 ? s[0][n][e] * scale2 : -INFINITY;
        mx = fmaxf(mx, x[n][e]);
      }
    }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float corr = mx == -INFINITY ? 1.f : exp2f(m - mx);
    m = mx;
    l *= corr;
    float prob[1][2][4];
#pragma unroll
    for (int n = 0; n < 2; ++n) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        prob[0][n][e] = head < G && x[n][e] != -INFINITY ? exp2f(x[n][e] - mx) : 0.f;
        l += prob[0][n][e];
      }
      prob[0][n][2] = prob[0][n][3] = 0.f;  // rows 8..15: no query head
    }
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      acc[0][j][0] *= corr;
      acc[0][j][1] *= corr;
    }
    detail::mma_c_times_tile<D, 16, 1, T>(acc, prob, s_v + (stage * kMmaRows + warp * 16) * D);
    __syncthreads();  // every warp is done with this stage before the next iteration's copy overwrites it
  }
  l += __shfl_xor_sync(0xffffffffu, l, 1);
  l += __shfl_xor_sync(0xffffffffu, l, 2);

  // Merge the warps' states (through the now idle K/V stages), as the SIMT kernel merges its teams'.
  float* s_acc = reinterpret_cast<float*>(s_k);  // [kWarps][G][D]
  float* s_m = s_acc + kWarps * G * D;           // [kWarps][G]
  float* s_l = s_m + kWarps * G;
  if (head < G) {
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      s_acc[(warp * G + head) * D + 8 * j + 2 * quad] = acc[0][j][0];
      s_acc[(warp * G + head) * D + 8 * j + 2 * quad + 1] = acc[0][j][1];
    }
    if (quad == 0) {
      s_m[warp * G + head] = m;
      s_l[warp * G + head] = l;
    }
  }
  __syncthreads();
  // The K / V stages are free once write_split_partial has read the warps' states (last_split_done's barriers).
  finish_split<T, D, G, kWarps, kMmaMergeBatch>(p, rows, s_acc, s_m, s_l, staged_merge ? s_acc : nullptr,
                                                int(4 * kMmaRows * D * sizeof(T) / sizeof(float)));
}

// GSA_DECODE_KERNEL=simt|mma, else tensor cores for groups of 4 or more query heads per KV head.
bool use_tensor_cores(int group) {
  const char* forced = std::getenv("GSA_DECODE_KERNEL");
  if (forced != nullptr && std::strcmp(forced, "simt") == 0) return false;
  if (forced != nullptr && std::strcmp(forced, "mma") == 0) return true;
  return group >= 4;
}

template <typename T, int D, int G>
Status launch_mma(const SparseDecodeParams& p, cudaStream_t s) {
  // Above 48 KiB of dynamic shared memory: the opt-in (dispatch.cuh).
  if (!detail::opt_in_dynamic_smem<sparse_decode_mma_kernel<T, D, G>>(mma_smem_bytes<D>(sizeof(T)))) {
    return Status::kCudaError;
  }
  // GSA_DECODE_STAGED_MERGE=0 (read once): the split merge without staging (merge_splits), for A/B runs.
  static const bool staged = detail::env_int("GSA_DECODE_STAGED_MERGE", 1) != 0;
  const cudaError_t e = detail::launch_dependent(detail::kSparseDecodeLaunch, sparse_decode_mma_kernel<T, D, G>,
                                                 dim3(p.splits, p.batch * p.kv_heads), kThreads,
                                                 mma_smem_bytes<D>(sizeof(T)), s, p, staged);
  return e == cudaSuccess ? Status::kOk : Status::kCudaError;
}

bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

bool supported_shape(const SparseDecodeParams& p) {
  const int group = p.kv_heads > 0 ? p.q_heads / p.kv_heads : 0;
  return p.batch >= 1 && p.kv_heads >= 1 && p.q_heads % p.kv_heads == 0 &&
         (group == 1 || group == 2 || group == 4 || group == 8) && (p.head_dim == 64 || p.head_dim == 128);
}

}  // namespace

int sparse_decode_wave_ctas(const SparseDecodeParams& p) {
  if (!supported_shape(p)) return 0;
  int device = 0, sms = 0, per_sm = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device >= 64) return 0;
  // Asked on every eager decode call: the answer per (device, dtype, head dim, group, kernel) is kept.
  const int group = p.q_heads / p.kv_heads;
  const int key = (((device * 2 + (p.dtype == DType::kBFloat16)) * 2 + (p.head_dim == 128)) * 4 +
                   (group == 1 ? 0 : group == 2 ? 1 : group == 4 ? 2 : 3)) * 2 + use_tensor_cores(group);
  static std::atomic<int> known[64 * 2 * 2 * 4 * 2] = {};
  if (const int cached = known[key].load(); cached > 0) return cached;
  if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) return 0;
  const Status status = detail::with_type_and_dim(p, [&](auto type, auto dim) {
    using T = typename decltype(type)::type;
    return detail::with_group(p.q_heads / p.kv_heads, [&](auto group) {
      constexpr int D = dim.value, G = group.value;
      cudaError_t e;
      if (use_tensor_cores(G)) {
        if (!detail::opt_in_dynamic_smem<sparse_decode_mma_kernel<T, D, G>>(mma_smem_bytes<D>(sizeof(T)))) {
          return Status::kCudaError;
        }
        e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, sparse_decode_mma_kernel<T, D, G>, kThreads,
                                                          mma_smem_bytes<D>(sizeof(T)));
      } else {
        e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, sparse_decode_kernel<T, D, G>, kThreads, 0);
      }
      return e == cudaSuccess ? Status::kOk : Status::kCudaError;
    });
  });
  if (status != Status::kOk) return 0;
  known[key].store(per_sm * sms);
  return per_sm * sms;
}

Status sparse_decode_cuda(const SparseDecodeParams& p, void* stream) {
  const bool split = p.splits > 1;
  if (!supported_shape(p) || p.max_keys < 0 || p.splits < 1 || !p.q || p.k.empty() || p.v.empty() ||
      (p.max_keys > 0 && !p.key_rows) || (p.range_begin == nullptr) != (p.range_end == nullptr) || !p.lse ||
      (!p.out && !p.out_half) || (split && (!p.partial_out || !p.partial_lse || !p.tickets)) ||
      !aligned16(p.out) || !aligned16(p.out_half) || !aligned16(p.partial_out) ||
      int64_t(p.batch) * p.kv_heads * p.max_keys > INT32_MAX || int64_t(p.batch) * p.q_heads > INT32_MAX) {
    return Status::kInvalidArgument;  // the last two: the kernels index the lists and query-head rows in 32 bits
  }
  auto s = static_cast<cudaStream_t>(stream);
  return detail::with_type_and_dim(p, [&](auto type, auto dim) {
    using T = typename decltype(type)::type;
    return detail::with_group(p.q_heads / p.kv_heads, [&](auto group) {
      if (use_tensor_cores(group.value)) return launch_mma<T, dim.value, group.value>(p, s);
      const cudaError_t e =
          detail::launch_dependent(detail::kSparseDecodeLaunch, sparse_decode_kernel<T, dim.value, group.value>,
                                   dim3(p.splits, p.batch * p.kv_heads), kThreads, 0, s, p);
      return e == cudaSuccess ? Status::kOk : Status::kCudaError;
    });
  });
}

}  // namespace gsa::kernels
