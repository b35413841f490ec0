// Private to gsa_kernels: the union and the unfold list of a chunk selection (chunk_selection.cu), device
// functions for the CTAs that run them (the descent kernel's, union_kernel's, unfold_kernel's):
//   - UnionBitmaps / cleared_bitmaps: a (query, KV head)'s per-level bitmaps of chosen gists, in shared memory or
//     the global workspace;
//   - mark_choices: the group's heads' choices of some levels as bits;
//   - union_of_level: a level's marked gists compacted into its ascending selected list;
//   - unfold_slots: slots of the unfold list (the selected chunks' raw rows, then every level's selected gists).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "gsa/kernels/chunk_selection.h"

namespace gsa::kernels::detail {

constexpr int kUnionWords = 4;  // bitmap words per thread and round of a long level's union
// Shared-memory words of a CTA's union bitmaps, every level's (24 KiB: 1M tokens at c0 = 8 take 5,376).
constexpr int64_t kSharedBitmapWords = 6144;

// The union bitmaps of one (query, KV head): level l's gist indices (below its row stride gist_stride[l]) are
// bits of words [offset(l), offset(l) + words(l)) of `bits`, in the descent CTA's shared memory while every level
// fits kSharedBitmapWords (each step's gist-tree tables and keys come from HBM: the weights streamed by a decode
// step evict them from L2, so each global round trip the union saves is ~1 us), else in the global workspace
// (p.bitmap, bitmap_words a level).
struct UnionBitmaps {
  uint32_t* bits;
  bool shared;
  int64_t offset[kMaxSelectionLevels];
  int64_t words[kMaxSelectionLevels];
  __device__ __forceinline__ uint32_t word(int l, int64_t w) const {
    return shared ? bits[offset[l] + w] : __ldcg(bits + offset[l] + w);
  }
};

__device__ __forceinline__ int64_t level_words(const ChunkSelectionParams& p, int l) {
  return (p.gist_stride[l] + 31) / 32;
}

// The cleared union bitmaps of levels [first, last) for this CTA (blockIdx.x: its query x KV head): one after the
// other in shared_bits when their words fit kSharedBitmapWords, else in the CTA's slice of the global workspace.
// Every thread of the CTA (NT threads) must call it; a barrier before the bits are used.
template <int NT>
__device__ __forceinline__ UnionBitmaps cleared_bitmaps(const ChunkSelectionParams& p, int first, int last,
                                                        uint32_t* shared_bits) {
  UnionBitmaps u;
  int64_t total = 0;
  for (int l = first; l < last; ++l) total += level_words(p, l);
  u.shared = total <= kSharedBitmapWords;
  u.bits = u.shared ? shared_bits : p.bitmap + int64_t(blockIdx.x) * p.levels * p.bitmap_words;
  int64_t words = 0;
  for (int l = first; l < last; ++l) {
    u.offset[l] = u.shared ? words : l * p.bitmap_words;
    u.words[l] = level_words(p, l);
    words = u.offset[l] + u.words[l];
  }
  for (int64_t w = u.offset[first] + threadIdx.x; w < words; w += NT) u.bits[w] = 0u;
  return u;
}

// The choices of levels [first, last) of the group's heads of (query s, KV head kv) as bits of their level's
// (cleared) bitmap: a thread issues the loads of kMarkBatch choices before its first atomicOr, so the levels'
// loads overlap.
template <int NT>
__device__ void mark_choices(const ChunkSelectionParams& p, int s, int kv, const UnionBitmaps& u, int first,
                             int last) {
  constexpr int kMarkBatch = 4;
  const int group = p.q_heads / p.kv_heads;
  int64_t total = 0;
  for (int l = first; l < last; ++l) total += int64_t(group) * p.keep[l];
  for (int64_t base = 0; base < total; base += int64_t(NT) * kMarkBatch) {
    int32_t idx[kMarkBatch];
    int level[kMarkBatch];
#pragma unroll
    for (int b = 0; b < kMarkBatch; ++b) {
      int64_t j = base + b * NT + threadIdx.x;
      idx[b] = -1;
      level[b] = 0;
      if (j < total) {
        int l = first;
        while (j >= int64_t(group) * p.keep[l]) j -= int64_t(group) * p.keep[l++];
        level[b] = l;
        idx[b] = p.chosen[p.chosen_offset[l] + (int64_t(s) * p.q_heads + kv * group) * p.keep[l] + j];
      }
    }
#pragma unroll
    for (int b = 0; b < kMarkBatch; ++b) {
      if (idx[b] >= 0) atomicOr(u.bits + u.offset[level[b]] + (idx[b] >> 5), 1u << (idx[b] & 31));
    }
  }
}

// Level l's marked gists, ascending, into selected_l of (query s, KV head kv) (-1 after them) and, when
// `copy` is given, into copy[0, M_l) too. NT threads compact the level's words: U consecutive words per thread, an
// exclusive prefix sum of their set bits (warp shuffles, then the warps' totals), two barriers per NT * U words.
// A thread writes its words' gists one by one, so the slowest thread holds the barrier after the writes: one word a
// thread while the level has at most 2 NT words (the group's choices cluster: 4 words may hold ~100 of them).
// Every thread must call it; mark_choices and a barrier first.
template <int NT, int U>
__device__ void union_level(const ChunkSelectionParams& p, int l, int s, int kv, const UnionBitmaps& u,
                            int32_t* copy) {
  __shared__ int warp_total[NT / 32];
  __shared__ int s_total;
  const int skv = s * p.kv_heads + kv;
  const int group = p.q_heads / p.kv_heads, M = group * p.keep[l];
  const int tid = threadIdx.x;
  if (tid == 0) s_total = 0;
  __syncthreads();
  int32_t* selected = p.selected[l] + int64_t(skv) * M;
  const int warp = tid / 32, lane = tid % 32;
  const int64_t words = u.words[l];
  for (int64_t base = 0; base < words; base += NT * U) {
    uint32_t bits[U];
    int count = 0;
#pragma unroll
    for (int i = 0; i < U; ++i) {
      const int64_t w = base + int64_t(tid) * U + i;
      bits[i] = w < words ? u.word(l, w) : 0u;
      count += __popc(bits[i]);
    }
    int inclusive = count;
#pragma unroll
    for (int o = 1; o < 32; o *= 2) {
      const int v = __shfl_up_sync(0xffffffffu, inclusive, o);
      if (lane >= o) inclusive += v;
    }
    if (lane == 31) warp_total[warp] = inclusive;
    __syncthreads();
    int before = s_total;
    for (int w = 0; w < warp; ++w) before += warp_total[w];
    int at = before + inclusive - count;
#pragma unroll
    for (int i = 0; i < U; ++i) {
      const int64_t w = base + int64_t(tid) * U + i;
      for (uint32_t b = bits[i]; b != 0; b &= b - 1) {
        const int32_t gist = static_cast<int32_t>(w * 32 + __ffs(b) - 1);
        selected[at] = gist;
        if (copy != nullptr) copy[at] = gist;
        ++at;
      }
    }
    __syncthreads();
    if (tid == NT - 1) s_total = before + inclusive;
    __syncthreads();
  }
  for (int j = s_total + tid; j < M; j += NT) {
    selected[j] = -1;
    if (copy != nullptr) copy[j] = -1;
  }
  __syncthreads();  // s_total and warp_total are reused by the next level
}

// Level l's union (union_level): one word a thread while the level has at most 2 NT words, else kUnionWords.
template <int NT>
__device__ __forceinline__ void union_of_level(const ChunkSelectionParams& p, int l, int s, int kv,
                                               const UnionBitmaps& u, int32_t* copy) {
  if (u.words[l] <= 2 * NT) {
    union_level<NT, 1>(p, l, s, kv, u, copy);
  } else {
    union_level<NT, kUnionWords>(p, l, s, kv, u, copy);
  }
}

// Slots first + u * stride (u < U, below `slots`) of the unfold list of (query s, KV head kv): slot j < raw_slots
// is the j % span-th row of chunk selected_0[j / span], the others the positions of the selected gists of each
// level; -1 where there is none. sel[l] is the pair's selected_l list (global or shared memory). The U slots'
// loads go out together, stage by stage (gist rows, then the rows' level and coverage): two dependent global
// round trips for all of them.
template <int U>
__device__ __forceinline__ void unfold_slots(const ChunkSelectionParams& p,
                                             const int32_t* const (&sel)[kMaxSelectionLevels], int32_t raw_slots,
                                             int32_t slots, int s, int kv, int64_t first, int64_t stride) {
  const int skv = s * p.kv_heads + kv;
  const int group = p.q_heads / p.kv_heads, span = p.max_chunk_span;
  const int64_t row = p.row[s];
  int32_t idx[U];
  int level[U];
#pragma unroll
  for (int u = 0; u < U; ++u) {  // 1. the gist each slot unfolds (level 0) or lists
    const int64_t j = first + u * stride;
    idx[u] = -1;
    level[u] = 0;
    if (j < raw_slots) {
      idx[u] = sel[0][j / span];
    } else if (j < slots) {
      int64_t at = j - raw_slots;
      int l = 0;
      while (at >= int64_t(group) * p.keep[l]) at -= int64_t(group) * p.keep[l++];
      level[u] = l;
      idx[u] = sel[l][at];
    }
  }
  int64_t pos[U], end[U];
#pragma unroll
  for (int u = 0; u < U; ++u) {  // 2. its position; a raw slot's row of the chunk, below the chunk's gist
    const int64_t j = first + u * stride;
    pos[u] = -1;
    end[u] = -1;
    if (idx[u] >= 0) {
      const int64_t g = row * p.gist_stride[level[u]] + idx[u];
      end[u] = __ldg(p.gist_pos[level[u]] + g);
      pos[u] = j < raw_slots ? __ldg(p.chunk_begin + g) + j % span : end[u];
    }
  }
  int8_t key_level[U];
  uint8_t covered[U];
#pragma unroll
  for (int u = 0; u < U; ++u) {  // 3. a raw row that is a gist is not unfolded; a covered row is not listed
    const int64_t j = first + u * stride;
    if (j < raw_slots && pos[u] >= end[u]) pos[u] = -1;
    key_level[u] = j < raw_slots && pos[u] >= 0 ? __ldg(p.key_level + row * p.key_level_stride + pos[u]) : -1;
    covered[u] = pos[u] >= 0 && p.covered != nullptr ? __ldg(p.covered + row * p.covered_stride + pos[u]) : 0;
  }
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const int64_t j = first + u * stride;
    if (j >= slots) continue;
    const bool listed = pos[u] >= 0 && key_level[u] < 0 && covered[u] == 0;
    p.key_pos[int64_t(skv) * (p.key_pos_row_stride > 0 ? p.key_pos_row_stride : slots) + j] =
        listed ? static_cast<int32_t>(pos[u]) : -1;
  }
}

}  // namespace gsa::kernels::detail
