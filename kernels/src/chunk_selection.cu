// chunk_selection_cuda launches, for the top level: score_kernel (grid: tiles of (head, candidate) pairs x
// (query, KV head); teams of D / 8 lanes each load kScoreIters gist key rows with 16-byte loads, all issued
// before the first dot, and take their dots with the query heads held in registers; one key load serves every
// head of the group) writes fp32 scores, and top_k_kernel (one CTA per (query, head)) keeps each head's kk best:
// up to kTopKThreads candidates by a bitwise search for the kk-th largest order key (one counting barrier a bit),
// above that by a 4-pass 8-bit radix select on order-preserving keys in shared-memory histograms
// (warp-aggregated adds: the scores share few top bits). A long top level (a decode step at 1M tokens: 65K gists
// per head) is split over top_slices CTAs per head: each keeps its slice's kk best, then one CTA per head selects
// over the survivors (the single-CTA select over all of them took 0.27 ms per layer on an H200).
// Then descent_kernel, one CTA per (query, KV head), does the rest: each level below the top while it is small
// (score the group's heads' children of the gists chosen above, each head's kk best by its threads' bitwise
// search over keys in registers; a larger level with under 2,048 candidates a head gets level_select_kernel, the
// same scoring and select in a CTA per (query, head) -- its dots on the tensor cores (mma_scores.cuh), its selects
// of up to 192 candidates in one warp -- which then takes a top level of up to 1,024 candidates too;
// larger ones score_kernel and top_k_kernel launches), the union
// of the group's choices per level (a bitmap the CTA clears itself, compacted in ascending order by a block prefix
// sum over the level's words; a long selection's levels, or those of few (query, KV head) CTAs, each in a CTA of
// union_kernel) and the rows to unfold (one slot per thread; after union_kernel by unfold_kernel). Three launches
// at three levels instead of nine (a memset, a score and a top-k launch per level, a union and an unfold launch).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <utility>

#include "dispatch.cuh"
#include "mma_scores.cuh"
#include "pdl.cuh"
#include "row_team.cuh"
#include "selection_union.cuh"
#include "top_k_select.cuh"

#include "gsa/kernels/chunk_selection.h"

namespace gsa::kernels {
namespace {

using detail::allow_dependent_launch;
using detail::block_count_before;
using detail::cleared_bitmaps;
using detail::dot8;
using detail::head_top_k;
using detail::kSharedBitmapWords;
using detail::launch_dependent;
using detail::mark_choices;
using detail::mma_scores;
using detail::order_key;
using detail::radix_top_k;
using detail::rank_top_k;
using detail::team_sum;
using detail::to_floats;
using detail::TopKShared;
using detail::union_of_level;
using detail::UnionBitmaps;
using detail::unfold_slots;
using detail::warp_top_k;
using detail::wait_for_prior_grids;

constexpr int kThreads = 128;
constexpr int kScoreIters = 4;  // (head, candidate) pairs per team of a score CTA
constexpr int kTopKThreads = 1024;
constexpr int kTopKCached = 8192;  // scores a top_k_kernel CTA keeps in shared memory (1M tokens, 3 levels: 8,192)
constexpr int kTopKHeadKeys = 8;   // keys a top_k_kernel thread holds in head_top_k (GSA_TOPK_HEAD_SELECT=1)
constexpr int kDescentThreads = 512;
// A level below the top runs inside the descent kernel when its (head, candidate) pairs, G * C_l, are at most
// kDescentMaxPairs (a decode step at 128K tokens with the adaptive budget: 4 x 132 pairs; with 16 fixed chunks at
// any length: 4 x 64). Larger levels (1M tokens, adaptive: 4 x 1,028) get CTAs of their own: level_select_kernel's,
// one per (query, head), or score_kernel's and top_k_kernel's.
constexpr int kDescentMaxPairs = 1024;
// ... except a level of over kHeadCtaMinPairs pairs when the (query, query head) CTAs fill at most half the SMs:
// it goes to level_select_kernel's CTA a head instead of the descent's CTA a KV head. One 128K-token step, adaptive
// (4 x 132 pairs, 32 head CTAs): 1.53-1.54 against 1.60-1.61 ms a token on an H200 (three calls); 16 fixed chunks
// (4 x 64) were 0.02 ms faster in the descent; a batch of 2 (64 head CTAs) as fast or 0.09 ms a step faster on
// level_select_kernel, a batch of 4 (128) 0.07-0.08 ms slower (plain loop, twice each). Since level_select_kernel's
// tensor-core dots and warp selects (session 34) the fixed budget's 4 x 64 pairs go there too (over 128): with the
// levels below in level_select_kernel its top level of up to 1,024 joins them (kTopJoinPairs), one launch where
// score_kernel, top_k_kernel and the fused descent took three: the 1B model's token 1.543 against 1.612-1.614 ms at
// 128K with 16 fixed chunks, 1.513-1.516 against 1.560-1.567 at 32K either budget (H100, session 35 call 2).
constexpr int kHeadCtaMinPairs = 128;
// A level below the top with more pairs than kDescentMaxPairs but fewer than this many candidates a head
// (head_top_k's limit: 2,047) is scored and selected by level_select_kernel too; consecutive such levels in one
// launch. GSA_LEVEL_SELECT (read once): 1 (unset) that, 2 a launch a level, 0 score_kernel and top_k_kernel (and
// the descent for the levels above kHeadCtaMinPairs pairs).
constexpr int kLevelMaxPairs = 2048;
// The descent's and level_select_kernel's per-level shared memory and selects are sized for at most kNarrowPairs
// pairs when every level they take has that few (128K tokens, adaptive: 132 candidates a head), else for their
// maximum (kDescentMaxPairs, kLevelMaxPairs): a thread then follows one candidate chain and holds one key where the
// wide size had it follow (clamped, discarded) and count up to four.
constexpr int kNarrowPairs = 512;
// The top level joins the level select of the levels below it (level_select_kernel scores the top level's
// candidates in each head's CTA and selects them with head_top_k, then descends) when those levels are
// level-selected and fit kNarrowPairs, the top level is not split (top_slices == 1) and it has at most
// kTopJoinPairs candidates: the 128K-token decode step with the 1B model's shapes (1,024 top gists a head, then 132
// candidates twice with the adaptive budget, 64 with 16 fixed chunks). One launch where score_kernel and
// top_k_kernel took two (5.1-5.6 and 7.2-7.7 us under Nsight Compute on an H200, twenty-fifth session). A KV head's
// G head CTAs each load the top level's key rows (128 KB at 1,024 gists of head dim 64) where score_kernel loaded
// them once for the group: from L2 after the first. GSA_SELECT_TOP_JOINS=0 (read once): apart.
constexpr int kTopJoinPairs = 1024;
// level_select_kernel's select of up to 32 kWarpSelectKeys candidates (the levels below the 1B model's 128K top
// level have 132 candidates a head) runs in its first warp (warp_top_k: no barrier a round, but ~7 dependent rounds
// while 15 warps wait); larger ones run over its 16 warps (head_top_k). Not in the descent kernel, whose heads have
// 4 warps each behind a barrier of 128 threads: a warp a head there was 0.02-0.03 ms a 128K token slower with the
// fixed budget of 16 chunks (64 candidates a head; H100, session 34 call 4). GSA_SELECT_WARP=0 (read once): every
// select by head_top_k. GSA_SELECT_RANK (read once; written in the thirty-sixth session, which got no GPU: off until
// the selection tests and the serve A/B have run on one): 1, the selects of up to 32 kWarpSelectKeys candidates by
// all 512 threads ranking each candidate against the others (rank_top_k: no rounds, one barrier; ~0.6 us a level of
// 132 predicted against warp_top_k's ~1.7); 2, that and head_top_k four bits a round (~4.2 rounds instead of ~7.8
// over the 1,024 top-level scores of a 128K step, each round a barrier of the CTA's 512 threads). Each is a
// level_select_kernel instantiation of its own (kSelect, tensor-core dots only): the default's code is as it was.
constexpr int kWarpSelectKeys = 6;
// level_select_kernel's selects: the small select's kind in the low two bits, kNibbleRounds apart; kSelect =
// kSelectAtRuntime takes kSmallByWarp or kSmallByHead from its select_mode argument (GSA_SELECT_WARP).
enum SelectMode : int { kSmallByHead = 0, kSmallByWarp = 1, kSmallByRank = 2, kSmallKind = 3, kNibbleRounds = 4 };
constexpr int kSelectAtRuntime = -1;
// Up to this many unfold slots per (query, KV head) the descent CTA writes them (3 a thread at 128K tokens,
// adaptive); a longer list (11K slots at 1M tokens, adaptive) gets unfold_kernel's many CTAs: one CTA following
// 22 load chains a thread cost 0.3 ms a step on an H200.
constexpr int kDescentUnfoldMax = 2048;
constexpr int kUnfoldThreads = 256;
static_assert(kDescentUnfoldMax % kDescentThreads == 0, "whole unfold slots a descent thread");

__device__ __forceinline__ int64_t keep_count(const ChunkSelectionParams& p, int s, int l) {
  const int64_t group = p.q_heads / p.kv_heads;
  const int64_t budget = p.fixed_k > 0 ? p.fixed_k : p.key_length[s] / p.compression / group / p.chunk + 1;
  const int64_t cap = max(int64_t{1}, p.doc_gists[int64_t(s) * p.levels + l] / 4);
  return min(min(budget, cap), int64_t{p.keep[l]});
}

// Gist index (into level l's row table) of candidate c of query s, head h; -1 when there is none. (The top-k
// kernels' one-candidate form: candidate_indices<1> would load the child count and begin of a missing parent too,
// and spills top_k_merge_kernel, sm_90a.)
__device__ __forceinline__ int64_t candidate_index(const ChunkSelectionParams& p, int l, int s, int h, int c) {
  const int64_t row = p.row[s];
  if (l == p.levels - 1) {
    return c < p.doc_gists[int64_t(s) * p.levels + l] ? p.top_begin[s] + c : -1;
  }
  const int width = p.max_children[l + 1];
  const int slot = c / width, i = c % width;
  const int32_t parent = p.chosen[p.chosen_offset[l + 1] + (int64_t(s) * p.q_heads + h) * p.keep[l + 1] + slot];
  if (parent < 0) return -1;
  const int64_t at = row * p.gist_stride[l + 1] + parent;
  const int64_t count = __ldg(p.child_count[l + 1] + at), begin = __ldg(p.child_begin[l + 1] + at);  // together
  return i < count ? begin + i : -1;
}

// The gist indices (into level l's row table) of n candidates (h[i], c[i]) of query s at once, -1 where there is
// none or !inside[i]: each link's loads together from valid positions (a lower level's chosen parents, then their
// child counts and begins), selected afterwards. (h[i], c[i]) must name a candidate slot of the level (c < C_l)
// even where !inside[i].
template <int n>
__device__ __forceinline__ void candidate_indices(const ChunkSelectionParams& p, int l, int s, const int (&h)[n],
                                                  const int (&c)[n], const bool (&inside)[n], int64_t (&out)[n]) {
  if (l == p.levels - 1) {
    const int64_t count = p.doc_gists[int64_t(s) * p.levels + l], begin = p.top_begin[s];
#pragma unroll
    for (int i = 0; i < n; ++i) out[i] = inside[i] && c[i] < count ? begin + c[i] : -1;
    return;
  }
  const int width = p.max_children[l + 1];
  const int64_t at0 = p.row[s] * p.gist_stride[l + 1];
  int32_t parent[n];
#pragma unroll
  for (int i = 0; i < n; ++i) {
    parent[i] = p.chosen[p.chosen_offset[l + 1] + (int64_t(s) * p.q_heads + h[i]) * p.keep[l + 1] + c[i] / width];
  }
  int64_t count[n], begin[n];
#pragma unroll
  for (int i = 0; i < n; ++i) {
    const int64_t at = at0 + max(parent[i], 0);
    count[i] = __ldg(p.child_count[l + 1] + at);
    begin[i] = __ldg(p.child_begin[l + 1] + at);
  }
#pragma unroll
  for (int i = 0; i < n; ++i) {
    const int child = c[i] % width;
    out[i] = inside[i] && parent[i] >= 0 && child < count[i] ? begin[i] + child : -1;
  }
}

// The key rows (positions in p.k) of level l's gists idx[i] of batch row `row`, each link's n loads together:
// the gists' positions, then (with a key slot table) their slots; 0 where the level has no gists. idx[i] < 0 reads
// gist 0's (the caller discards it).
template <int n>
__device__ __forceinline__ void gist_key_rows(const ChunkSelectionParams& p, int l, int64_t row,
                                              const int64_t (&idx)[n], int64_t (&out)[n]) {
#pragma unroll
  for (int i = 0; i < n; ++i) out[i] = 0;
  if (p.gist_stride[l] > 0) {
    const int64_t* gist_pos = p.gist_pos[l] + row * p.gist_stride[l];
#pragma unroll
    for (int i = 0; i < n; ++i) out[i] = gist_pos[max(idx[i], int64_t{0})];
  }
  if (p.key_slot != nullptr) {
    const int64_t* slot = p.key_slot + row * p.key_slot_stride;
#pragma unroll
    for (int i = 0; i < n; ++i) out[i] = slot[out[i]];
  }
}

// The group's query heads, this lane's 8 elements of each, as floats.
template <typename T, int D, int G>
__device__ __forceinline__ void load_query(const ChunkSelectionParams& p, int s, int kv, int lane, float (&qr)[G][8]) {
  const T* q = static_cast<const T*>(p.q) + s * p.q_stride[0] + int64_t(kv) * G * p.q_stride[1] + lane * 8;
#pragma unroll
  for (int h = 0; h < G; ++h) to_floats<T>(*reinterpret_cast<const uint4*>(q + h * p.q_stride[1]), qr[h]);
}

// One round of scoring by a CTA of NT threads: its teams (D / 8 lanes each) score the (head, candidate) pairs
// first + it * teams + team (it < ITERS) of (query s, KV head kv) at level l into p.scores. Every thread of the
// CTA must call it (team shuffles).
template <typename T, int D, int G, int NT, int ITERS>
__device__ __forceinline__ void score_round(const ChunkSelectionParams& p, int l, int s, int kv, int first,
                                            const float (&qr)[G][8]) {
  constexpr int kTeam = D / 8;
  constexpr int kTeams = NT / kTeam;
  const int tid = threadIdx.x, team = tid / kTeam, lane = tid % kTeam;
  const int64_t row = p.row[s];
  const int C = p.candidates[l];
  const bool shared = l == p.levels - 1;  // the top level's candidates are the same for every head
  const int pairs = shared ? C : G * C;   // (head, candidate) pairs of this (query, KV head)
  const T* k = p.k.head<const T>(static_cast<int>(row), kv, p.kv_heads) + lane * 8;
  float* scores = p.scores + (int64_t(s) * p.q_heads + kv * G) * C;  // [G, C] of this group
  // Every team's ITERS candidate chains (parent -> children -> gist position -> key row) go out link by link: each
  // link's ITERS loads together from valid (clamped) positions, selected afterwards, so a chain costs one round trip
  // a link, not one a link and candidate (a load behind an `idx >= 0` branch whose value the branch uses waits
  // there: ptxas kept the candidates' chains one after another).
  int64_t idx[ITERS];
  uint4 raw[ITERS];
  {
    int h[ITERS], c[ITERS];
    bool inside[ITERS];
#pragma unroll
    for (int it = 0; it < ITERS; ++it) {
      const int pair = first + it * kTeams + team;
      inside[it] = pair < pairs;
      h[it] = kv * G + (shared || !inside[it] ? 0 : pair / C);
      c[it] = !inside[it] ? 0 : shared ? pair : pair % C;
    }
    candidate_indices(p, l, s, h, c, inside, idx);
  }
  int64_t pos[ITERS];
  gist_key_rows(p, l, row, idx, pos);
#pragma unroll
  for (int it = 0; it < ITERS; ++it) {
    raw[it] = __ldg(reinterpret_cast<const uint4*>(k + pos[it] * p.k.row_stride));
    if (idx[it] < 0) raw[it] = make_uint4(0, 0, 0, 0);
  }
#pragma unroll
  for (int it = 0; it < ITERS; ++it) {  // the same trip count for every team: shuffles converge
    const int pair = first + it * kTeams + team;
    const bool inside = pair < pairs;
    float x[8];
    to_floats<T>(raw[it], x);
    if (shared) {
#pragma unroll
      for (int g = 0; g < G; ++g) {
        const float dot = team_sum<kTeam>(dot8(x, qr[g]));
        if (lane == 0 && inside) scores[int64_t(g) * C + pair] = idx[it] >= 0 ? dot : -INFINITY;
      }
    } else {  // per-head candidates: the dot with the candidate's own head (qr stays in registers)
      const int h = pair / C;
      float dot = 0.f;
#pragma unroll
      for (int g = 0; g < G; ++g) {
        if (g == h) dot = dot8(x, qr[g]);
      }
      dot = team_sum<kTeam>(dot);
      if (lane == 0 && inside) scores[pair] = idx[it] >= 0 ? dot : -INFINITY;
    }
  }
}

template <typename T, int D, int G>
__global__ void __launch_bounds__(kThreads) score_kernel(const __grid_constant__ ChunkSelectionParams p, int l) {
  wait_for_prior_grids();  // the query, keys and lists come from the kernels before (pdl.cuh)
  allow_dependent_launch();
  const int s = blockIdx.y / p.kv_heads, kv = blockIdx.y % p.kv_heads;
  float qr[G][8];
  load_query<T, D, G>(p, s, kv, threadIdx.x % (D / 8), qr);
  score_round<T, D, G, kThreads, kScoreIters>(p, l, s, kv, blockIdx.x * (kThreads / (D / 8)) * kScoreIters, qr);
}

// Head h of query s keeps its kk best of scores[0, n) at level l by the radix select: chosen_l in arrival order,
// -1 after them; score i belongs to candidate candidate_of(i).
template <int NT, typename CandidateOf>
__device__ void radix_choose(const ChunkSelectionParams& p, int l, int s, int h, const float* scores, int n,
                             TopKShared& sh, CandidateOf candidate_of) {
  const int K = p.keep[l];
  int32_t* out = p.chosen + p.chosen_offset[l] + (int64_t(s) * p.q_heads + h) * K;
  const int kept = radix_top_k<NT>(scores, n, keep_count(p, s, l), sh, [&](int i, int slot) {
    if (slot < K) out[slot] = static_cast<int32_t>(candidate_index(p, l, s, h, candidate_of(i)));
  });
  for (int j = kept + threadIdx.x; j < K; j += NT) out[j] = -1;
}

// Head h of query s keeps its kk best of C <= blockDim.x scores at level l, thread c holding candidate c: the
// kk-th largest order key by a bitwise search (up to 32 rounds of one counting barrier; it stops once exactly kk
// keys are at or above the threshold), then the candidates above it and the first ties (lower candidates first)
// into out[0, min(kk, finite)) in candidate order, -1 after them up to K. (Each thread ranking its score against
// all C cost C comparisons a thread, 17.7 us at C = 512 under Nsight Compute; the radix select twelve barriers,
// 7 us at C = 1,024 on an H200.)
__device__ void bitwise_top_k(const ChunkSelectionParams& p, int l, int s, int h, const float* scores, int C,
                              int64_t kk, int32_t* out, int K) {
  __shared__ int warp_count[kTopKThreads / 32];
  const int c = threadIdx.x;
  const float f = c < C ? scores[c] : -INFINITY;
  const uint32_t key = f == -INFINITY ? 0u : order_key(f);  // 0: absent (finite keys are above 0x007fffff)
  uint32_t threshold = 0;  // the largest key with at least kk keys at or above it (0: fewer than kk finite)
  for (int bit = 31; bit >= 0; --bit) {
    const uint32_t trial = threshold | (1u << bit);
    const int count = __syncthreads_count(key >= trial);
    if (count >= kk) threshold = trial;
    if (count == kk) {  // the keys at or above it are the kk best: done (~15 rounds of 32 at 1,024 candidates)
      threshold -= 1;   // (taken: the keys above threshold; no ties left to take)
      break;
    }
  }
  const int above = __syncthreads_count(key > threshold);
  const bool tie = key == threshold && key != 0u;
  const int ties_before = block_count_before(tie, warp_count);  // every thread: it holds barriers
  const bool take = key > threshold || (tie && ties_before < kk - above);
  const int slot = block_count_before(take, warp_count);
  if (take && slot < K) out[slot] = static_cast<int32_t>(candidate_index(p, l, s, h, c));
  const int kept = __syncthreads_count(take);
  for (int j = kept + c; j < K; j += blockDim.x) out[j] = -1;
}

// Threads of a top_k_kernel CTA for C candidates: one a candidate (whole warps) for the bitwise select, else
// kTopKThreads. (1,024 threads for 64 candidates made 64 requests' selection 4.7 ms of a 12 ms step on an H200.)
inline int top_k_threads(int C) { return C > kTopKThreads ? kTopKThreads : std::max(32, (C + 31) / 32 * 32); }

// One CTA per (query, head), top_k_threads(C) threads: its kk best of the level's C candidates, as gist indices
// into `chosen`. Up to kTopKThreads candidates the bitwise select; up to kTopKHeadKeys a thread (with head_select)
// head_top_k over keys in registers, two bits a round (the top level at 1M tokens: 8,192 candidates a head); else
// the radix select, from shared memory up to kTopKCached candidates.
__global__ void __launch_bounds__(kTopKThreads, 1)
    top_k_kernel(const __grid_constant__ ChunkSelectionParams p, int l, bool head_select) {
  wait_for_prior_grids();  // the query, keys and lists come from the kernels before (pdl.cuh)
  allow_dependent_launch();
  __shared__ TopKShared sh;
  const int qh = blockIdx.x, s = qh / p.q_heads, h = qh % p.q_heads;
  __shared__ float cached[kTopKCached];
  const int C = p.candidates[l], K = p.keep[l];
  int32_t* out = p.chosen + p.chosen_offset[l] + int64_t(qh) * K;
  const float* scores = p.scores + int64_t(qh) * C;
  if (C <= kTopKThreads) {  // one candidate a thread: the bitwise select
    bitwise_top_k(p, l, s, h, scores, C, keep_count(p, s, l), out, K);
    return;
  }
  if (head_select && C <= kTopKThreads * kTopKHeadKeys) {
    __shared__ detail::HeadSelectShared<kTopKThreads, kTopKHeadKeys> hs;
    const int64_t kk = min(keep_count(p, s, l), int64_t{K});
    head_top_k<kTopKThreads, 1, kTopKHeadKeys>(
        scores, [&](int c) { return static_cast<int32_t>(candidate_index(p, l, s, h, c)); }, C, kk, out, K, hs);
    return;
  }
  if (C <= kTopKCached) {  // the radix select reads its scores five times: from shared memory when they fit
    for (int c = threadIdx.x; c < C; c += kTopKThreads) cached[c] = scores[c];
    __syncthreads();
    scores = cached;
  }
  radix_choose<kTopKThreads>(p, l, s, h, scores, C, sh, [](int c) { return c; });
}

// The top level's first stage when its candidates are split (top_slices > 1): CTA (slice, query x head) keeps
// its slice's kk best (score and candidate number) in the slice workspace, -inf / -1 after them.
__global__ void __launch_bounds__(kTopKThreads)
    top_k_slice_kernel(const __grid_constant__ ChunkSelectionParams p, int l) {
  wait_for_prior_grids();  // the query, keys and lists come from the kernels before (pdl.cuh)
  allow_dependent_launch();
  __shared__ TopKShared sh;
  const int slice = blockIdx.x, qh = blockIdx.y, s = qh / p.q_heads;
  const int C = p.candidates[l], K = p.keep[l], P = p.top_slices;
  const int width = (C + P - 1) / P, first = slice * width, n = max(0, min(C, first + width) - first);
  const float* scores = p.scores + int64_t(qh) * C + first;
  float* ws_scores = p.slice_scores + (int64_t(qh) * P + slice) * K;
  int32_t* ws_ids = p.slice_ids + (int64_t(qh) * P + slice) * K;
  const int kept = radix_top_k<kTopKThreads>(scores, n, keep_count(p, s, l), sh, [&](int c, int slot) {
    if (slot < K) {
      ws_scores[slot] = scores[c];
      ws_ids[slot] = first + c;
    }
  });
  for (int j = kept + threadIdx.x; j < K; j += kTopKThreads) {
    ws_scores[j] = -INFINITY;
    ws_ids[j] = -1;
  }
}

// The second stage: one CTA per (query, head) over its slices' P * K survivors.
__global__ void __launch_bounds__(kTopKThreads)
    top_k_merge_kernel(const __grid_constant__ ChunkSelectionParams p, int l) {
  wait_for_prior_grids();  // the query, keys and lists come from the kernels before (pdl.cuh)
  allow_dependent_launch();
  __shared__ TopKShared sh;
  const int qh = blockIdx.x, s = qh / p.q_heads, h = qh % p.q_heads;
  const int K = p.keep[l], n = p.top_slices * K;
  const int32_t* ids = p.slice_ids + int64_t(qh) * n;
  radix_choose<kTopKThreads>(p, l, s, h, p.slice_scores + int64_t(qh) * n, n, sh, [&](int i) { return ids[i]; });
}

// This thread's words of head h's query as mma B fragments (mma_scores): elements 32 j + 8 (lane % 4) .. + 7.
template <typename T, int D>
__device__ __forceinline__ void load_query_words(const ChunkSelectionParams& p, int s, int h, uint4 (&words)[D / 32]) {
  const T* q = static_cast<const T*>(p.q) + s * p.q_stride[0] + int64_t(h) * p.q_stride[1] + (threadIdx.x % 4) * 8;
#pragma unroll
  for (int j = 0; j < D / 32; ++j) words[j] = *reinterpret_cast<const uint4*>(q + 32 * j);
}

// Shared memory of a CTA of NT threads that scores and selects up to MP (head, candidate) pairs of one level
// (pair = head * C + candidate): each pair's gist index, key row and score, and the heads' selects (head_top_k,
// MP / NT candidates a thread: the head's NT / G threads cover its C <= MP / G candidates).
template <int NT, int MP>
struct LevelShared {
  static_assert(MP % NT == 0, "whole pairs a thread");
  int32_t gist[MP];
  int32_t key_row[MP];
  alignas(16) float score[MP];  // (rank_top_k reads float4s)
  detail::HeadSelectShared<NT, MP / NT> select;
  int rank_count[NT / 32];  // rank_top_k's warp counts
};

// Level l of query s's G query heads head0 .. head0 + G - 1 (all of KV head kv) in one CTA, for G * C_l <= MP:
// every head's candidates (below the top, the children of its choice one level up; at the top, G = 1 only, the
// document's top-level gists) are scored and its kk best kept in chosen_l, candidate order. Head head0 + h's
// candidates belong to threads [h NT / G, (h + 1) NT / G): its teams score them with its query (qh, this thread's
// team lane's 8 elements of it) and the same threads select them. The descent kernel calls it with a KV head's
// whole group (head0 = kv G), level_select_kernel with one head (G = 1).
// 1. each thread follows kChains candidate chains (parent -> children -> gist position -> key row) at once;
// 2. the teams (D / 8 lanes) load kIters key rows each before their dots (64-element rows: 12 take a head's 192
//    candidates in one round in the descent, 16 teams a head of 4, 768 in level_select_kernel, 64 teams; a joined
//    top level's 1,024 there take 16 -- with GSA_SELECT_MMA=0, see 2');
// 2'. with G = 1 and query_words (level_select_kernel, kMma) the warps score the head's candidates on the tensor
//    cores instead (mma_scores);
// 3. the head's threads keep its kk best (head_top_k; ranking every pair against its head's C scores cost ~C
//    comparisons a thread, ~5 us a level at C = 132 on an H200; a bitonic sort ~10 us), or, with G = 1, up to 32
//    kWarpSelectKeys candidates by select_mode: every thread ranking them (rank_top_k) or the CTA's first warp
//    alone (warp_top_k).
template <typename T, int D, int G, int NT, int MP, int kIters = 12>
__device__ void descend_level(const ChunkSelectionParams& p, int l, int s, int kv, int head0, const float (&qh)[8],
                              const uint4 (&query_words)[D / 32], bool mma, int select_mode,
                              LevelShared<NT, MP>& sh) {
  constexpr int kChains = MP / NT;
  constexpr int kTeam = D / 8, kHeadTeams = NT / kTeam / G;
  static_assert(kHeadTeams >= 1 && kHeadTeams * kTeam * G == NT, "whole teams a head");
  const int C = p.candidates[l], pairs = G * C, tid = threadIdx.x;
  const int64_t row = p.row[s];
  // The chains (parent -> children -> gist position -> key row) link by link, as score_round takes them.
  int64_t idx[kChains], key[kChains];
  {
    int hh[kChains], cc[kChains];
    bool inside[kChains];
#pragma unroll
    for (int u = 0; u < kChains; ++u) {
      const int i = tid + u * NT;
      inside[u] = i < pairs;
      hh[u] = G == 1 || !inside[u] ? head0 : head0 + i / C;
      cc[u] = !inside[u] ? 0 : G == 1 ? i : i % C;
    }
    candidate_indices(p, l, s, hh, cc, inside, idx);
  }
  gist_key_rows(p, l, row, idx, key);
#pragma unroll
  for (int u = 0; u < kChains; ++u) {
    const int i = tid + u * NT;
    if (i < pairs) {
      sh.gist[i] = static_cast<int32_t>(idx[u]);
      sh.key_row[i] = idx[u] >= 0 ? static_cast<int32_t>(key[u]) : -1;
      sh.score[i] = -INFINITY;
    }
  }
  __syncthreads();
  const int team = tid / kTeam, lane = tid % kTeam;
  const int h = team / kHeadTeams, first = team % kHeadTeams;  // this team's head, its first candidate
  const int32_t* key_row = sh.key_row + h * C;
  float* score = sh.score + h * C;
  const T* k_head = p.k.head<const T>(static_cast<int>(row), kv, p.kv_heads);
  if (G == 1 && mma) {  // level_select_kernel: the head's dots on the tensor cores
    mma_scores<T, D, NT>(k_head, p.k.row_stride, key_row, score, C, query_words);
  } else {
    const T* k = k_head + lane * 8;
    for (int base = first; base - first < C; base += kHeadTeams * kIters) {  // one trip count for every team
      // Steps of this round that hold a candidate of some team: the same for every thread (base - first is), so the
      // round stops there together, shuffles converged (a round of 12 took 9 at 128K tokens, 5 in the second round
      // of 1,028 candidates at 1M).
      const int steps = min(kIters, (C - (base - first) + kHeadTeams - 1) / kHeadTeams);
      uint4 raw[kIters];
#pragma unroll
      for (int it = 0; it < kIters; ++it) {
        if (it == steps) break;
        const int c = base + it * kHeadTeams;
        const int32_t key = c < C ? key_row[c] : -1;
        raw[it] = make_uint4(0, 0, 0, 0);
        if (key >= 0) raw[it] = __ldg(reinterpret_cast<const uint4*>(k + int64_t(key) * p.k.row_stride));
      }
#pragma unroll
      for (int it = 0; it < kIters; ++it) {
        if (it == steps) break;
        const int c = base + it * kHeadTeams;
        float x[8];
        to_floats<T>(raw[it], x);
        const float dot = team_sum<kTeam>(dot8(x, qh));
        if (lane == 0 && c < C && key_row[c] >= 0) score[c] = dot;
      }
    }
  }
  __syncthreads();
  const int K = p.keep[l];
  const int64_t kk = min(keep_count(p, s, l), int64_t{K});
  int32_t* chosen = p.chosen + p.chosen_offset[l] + (int64_t(s) * p.q_heads + head0 + h) * K;
  const int32_t* gist = sh.gist + h * C;
  const int small = select_mode & kSmallKind;
  if (G == 1 && small == kSmallByRank && C <= 32 * kWarpSelectKeys) {
    rank_top_k<NT>(score, [gist](int c) { return gist[c]; }, C, kk, chosen, K, sh.rank_count);
  } else if (G == 1 && small == kSmallByWarp && C <= 32 * kWarpSelectKeys) {
    if (tid < 32) warp_top_k<kWarpSelectKeys>(score, [gist](int c) { return gist[c]; }, C, kk, chosen, K);
  } else if (select_mode & kNibbleRounds) {
    head_top_k<NT, G, MP / NT, 4>(score, [gist](int c) { return gist[c]; }, C, kk, chosen, K, sh.select);
  } else {
    head_top_k<NT, G, MP / NT>(score, [gist](int c) { return gist[c]; }, C, kk, chosen, K, sh.select);
  }
  __syncthreads();
}

// One CTA per (query, KV head): with kFused the levels below the top by descend_level (the top level comes from
// score_kernel and top_k_kernel; without kFused every level does, and the kernel keeps few registers: more CTAs
// an SM for a large batch), then the union of every level and, up to kDescentUnfoldMax slots, the unfold list
// (from the union's lists kept in shared memory).
template <typename T, int D, int G, bool kFused, int MP>
__global__ void __launch_bounds__(kDescentThreads, 1)
    descent_kernel(const __grid_constant__ ChunkSelectionParams p, int32_t raw_slots, int32_t slots) {
  wait_for_prior_grids();  // the query, keys and lists come from the kernels before (pdl.cuh)
  allow_dependent_launch();
  constexpr int NT = kDescentThreads;
  __shared__ uint32_t shared_bits[kSharedBitmapWords];
  __shared__ int32_t shared_selected[kDescentUnfoldMax];  // every level's union, when the list is unfolded here
  const int s = blockIdx.x / p.kv_heads, kv = blockIdx.x % p.kv_heads;
  const UnionBitmaps u = cleared_bitmaps<NT>(p, 0, p.levels, shared_bits);
  if constexpr (kFused) {
    __shared__ LevelShared<NT, MP> sh;
    // This thread's head's query (its team lane's 8 elements): head h's teams are threads [h NT / G, (h + 1) NT / G).
    float qh[1][8];
    load_query<T, D, 1>(p, s, kv * G + threadIdx.x / (NT / G), threadIdx.x % (D / 8), qh);
    const uint4 no_words[D / 32] = {};  // (the team dots: level_select_kernel's mma_scores takes a head a CTA)
    for (int l = p.levels - 2; l >= 0; --l) {
      descend_level<T, D, G, NT, MP>(p, l, s, kv, kv * G, qh[0], no_words, false, kSmallByHead, sh);
    }
  }
  __syncthreads();
  mark_choices<NT>(p, s, kv, u, 0, p.levels);
  __syncthreads();
  const bool unfold_here = slots <= kDescentUnfoldMax;  // then G * sum_l K_l <= slots fit shared_selected
  const int32_t* sel[kMaxSelectionLevels] = {};
  int64_t at = 0;
  for (int l = 0; l < p.levels; ++l) {
    union_of_level<NT>(p, l, s, kv, u, unfold_here ? shared_selected + at : nullptr);
    sel[l] = shared_selected + at;
    at += int64_t(G) * p.keep[l];
  }
  if (unfold_here) {
    unfold_slots<kDescentUnfoldMax / NT>(p, sel, raw_slots, slots, s, kv, threadIdx.x, NT);
  }
}

// The union of a selection whose levels below the top are not fused, long (slots > kDescentUnfoldMax) or on few
// CTAs (chunk_selection_cuda's split_tail): CTA (query x KV head, level l) clears, marks and compacts level l's
// bitmap alone, so the levels' unions run side by side (the descent kernel's CTA took them one after the other:
// 17 us a layer under Nsight Compute at 1M tokens, adaptive, on an H200). The unfold list is unfold_kernel's.
__global__ void __launch_bounds__(kDescentThreads, 1) union_kernel(const __grid_constant__ ChunkSelectionParams p) {
  wait_for_prior_grids();  // the choices come from the kernels before (pdl.cuh)
  allow_dependent_launch();
  constexpr int NT = kDescentThreads;
  __shared__ uint32_t shared_bits[kSharedBitmapWords];
  const int l = blockIdx.y, s = blockIdx.x / p.kv_heads, kv = blockIdx.x % p.kv_heads;
  const UnionBitmaps u = cleared_bitmaps<NT>(p, l, l + 1, shared_bits);
  __syncthreads();
  mark_choices<NT>(p, s, kv, u, l, l + 1);
  __syncthreads();
  union_of_level<NT>(p, l, s, kv, u, nullptr);
}

// One CTA per (query, query head): levels high .. low (< the top) of a selection the descent cannot take (over
// kDescentMaxPairs pairs a KV head) but with at most kLevelMaxPairs - 1 candidates a head (adaptive budget: 132
// at 128K tokens, 1,028 at 1M), scored and selected one after the other by descend_level for the one head (a
// head's candidates are the children of its own choices one level up: no other head's) -- one launch where
// score_kernel and top_k_kernel took two a level (12-16 us each under Nsight Compute on an H200). With kTopPairs > 0
// high is the top level, joined (kTopJoinPairs): scored and selected first, at its own capacity.
template <typename T, int D, int MP, int kTopPairs, bool kMma, int kSelect>
__global__ void __launch_bounds__(kDescentThreads, 1)
    level_select_kernel(const __grid_constant__ ChunkSelectionParams p, int high, int low, int select_mode) {
  wait_for_prior_grids();  // the query, keys and the level above's choices come from the kernels before (pdl.cuh)
  allow_dependent_launch();
  // The selects (SelectMode): kSelect, or at run time the warp or the 16-warp select (a value the compiler knows
  // excludes the rank select and the four-bit rounds: their code is not in that instantiation).
  const int mode = kSelect != kSelectAtRuntime ? kSelect : (select_mode & kSmallByWarp);
  __shared__ LevelShared<kDescentThreads, MP> sh;
  const int s = blockIdx.x / p.q_heads, h = blockIdx.x % p.q_heads, kv = h / (p.q_heads / p.kv_heads);
  // Head h's query: this thread's mma B fragment words (mma_scores), or its team lane's 8 elements (!kMma).
  float qh[1][8] = {};
  uint4 words[D / 32] = {};
  if constexpr (kMma) {
    load_query_words<T, D>(p, s, h, words);
  } else {
    load_query<T, D, 1>(p, s, h, threadIdx.x % (D / 8), qh);
  }
  // descend_level ends on a barrier: level l's choices (global memory) are visible to the CTA's reads at l - 1.
  int l = high;
  if constexpr (kTopPairs > 0) {
    __shared__ LevelShared<kDescentThreads, kTopPairs> top;
    descend_level<T, D, 1, kDescentThreads, kTopPairs, 16>(p, high, s, kv, h, qh[0], words, kMma, mode, top);
    l = high - 1;
  }
  for (; l >= low; --l) {
    descend_level<T, D, 1, kDescentThreads, MP>(p, l, s, kv, h, qh[0], words, kMma, mode, sh);
  }
}

// The unfold list of a long selection (slots > kDescentUnfoldMax) or after union_kernel: grid (slot tiles, query x
// KV head).
__global__ void __launch_bounds__(kUnfoldThreads) unfold_kernel(const __grid_constant__ ChunkSelectionParams p,
                                                                int32_t raw_slots, int32_t slots) {
  wait_for_prior_grids();  // the query, keys and lists come from the kernels before (pdl.cuh)
  allow_dependent_launch();
  const int s = blockIdx.y / p.kv_heads, kv = blockIdx.y % p.kv_heads;
  const int group = p.q_heads / p.kv_heads;
  const int32_t* sel[kMaxSelectionLevels] = {};
  for (int l = 0; l < p.levels; ++l) sel[l] = p.selected[l] + int64_t(blockIdx.y) * group * p.keep[l];
  unfold_slots<1>(p, sel, raw_slots, slots, s, kv, int64_t(blockIdx.x) * kUnfoldThreads + threadIdx.x, 0);
}

// f(std::integral_constant<int, MP>{}) with MP = kNarrowPairs when `widest` (head, candidate) pairs a level fit it,
// else kWide: the level CTAs' shared memory and selects sized to the levels they take (kNarrowPairs above).
template <int kWide, typename F>
void with_pair_capacity(int64_t widest, F&& f) {
  if (widest <= kNarrowPairs) {
    f(std::integral_constant<int, kNarrowPairs>{});
  } else {
    f(std::integral_constant<int, kWide>{});
  }
}

}  // namespace

Status chunk_selection_cuda(const ChunkSelectionParams& p, void* stream_ptr) {
  const int group = p.kv_heads > 0 ? p.q_heads / p.kv_heads : 0;
  if (p.num_queries < 0 || p.kv_heads < 1 || p.q_heads % p.kv_heads != 0 ||
      (group != 1 && group != 2 && group != 4 && group != 8) || (p.head_dim != 64 && p.head_dim != 128) ||
      p.levels < 1 || p.levels > kMaxSelectionLevels || !p.q || p.k.empty() || !p.scores || !p.chosen || !p.bitmap ||
      !p.key_pos || p.bitmap_words < 1 || p.top_slices < 1 || p.key_pos_row_stride < 0 ||
      (p.key_slot != nullptr && p.key_slot_stride < 1) || (p.top_slices > 1 && (!p.slice_scores || !p.slice_ids))) {
    return Status::kInvalidArgument;
  }
  const int32_t raw_slots = group * p.keep[0] * p.max_chunk_span;
  int32_t slots = raw_slots;
  for (int l = 0; l < p.levels; ++l) slots += group * p.keep[l];
  if (p.key_pos_row_stride != 0 && p.key_pos_row_stride < slots) return Status::kInvalidArgument;
  if (p.num_queries == 0) return Status::kOk;
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  // The levels below the top run inside the descent kernel when every one of them is small enough, none goes to
  // level_select_kernel's CTAs a head (per_head), and the (query, KV head) CTAs fit in one wave (one CTA an SM: a
  // large batch is faster level by level).
  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
    return Status::kCudaError;
  }
  static const int level_select = detail::env_int("GSA_LEVEL_SELECT", 1);
  const bool head_ctas_fit = level_select != 0 && 2 * int64_t(p.num_queries) * p.q_heads <= sms;
  auto per_head = [&](int l) { return head_ctas_fit && group * p.candidates[l] > kHeadCtaMinPairs; };
  bool fused = int64_t(p.num_queries) * p.kv_heads <= sms;
  int64_t fused_pairs = 0;  // the most (head, candidate) pairs of a level below the top (the descent's, when fused)
  for (int l = 0; l < p.levels - 1; ++l) {
    const int64_t pairs = int64_t(group) * p.candidates[l];
    fused = fused && pairs <= kDescentMaxPairs && !per_head(l);
    fused_pairs = std::max(fused_pairs, pairs);
  }
  const int top = p.levels - 1, last_alone = fused ? top : 0;  // levels top .. last_alone: their own kernels
  static const bool union_split = detail::env_int("GSA_UNION_SPLIT", 1) != 0;     // union_kernel (A/B switch)
  // GSA_TOPK_HEAD_SELECT=1 (read once): top_k_kernel's head_top_k for 1,025-8,192 candidates a head instead of the
  // radix select -- 0.09 ms a token slower at 1M tokens, adaptive, on an H200 (2.39 against 2.30 ms, twice).
  static const bool top_head_select = detail::env_int("GSA_TOPK_HEAD_SELECT", 0) != 0;
  static const bool top_joins = detail::env_int("GSA_SELECT_TOP_JOINS", 1) != 0;  // kTopJoinPairs above
  // GSA_SELECT_MMA (read once): 1 (unset) level_select_kernel's dots on the tensor cores (mma_scores), 0 by teams
  // of D / 8 lanes (the A/B switch).
  static const bool mma_scores_on = detail::env_int("GSA_SELECT_MMA", 1) != 0;
  static const int select_mode = detail::env_int("GSA_SELECT_WARP", 1) != 0 ? kSmallByWarp : kSmallByHead;
  static const int rank_select = detail::env_int("GSA_SELECT_RANK", 0);  // kWarpSelectKeys above: 1 or 2
  // f(kMma, kSelect): level_select_kernel's instantiation for GSA_SELECT_MMA and GSA_SELECT_RANK (the team dots
  // take the default selects only).
  auto with_level_select = [](auto f) {
    if (!mma_scores_on) return f(std::false_type{}, std::integral_constant<int, kSelectAtRuntime>{});
    if (rank_select == 1) return f(std::true_type{}, std::integral_constant<int, kSmallByRank>{});
    if (rank_select == 2) return f(std::true_type{}, std::integral_constant<int, kSmallByRank | kNibbleRounds>{});
    f(std::true_type{}, std::integral_constant<int, kSelectAtRuntime>{});
  };
  return detail::with_type_and_dim(p, [&](auto type, auto dim) {
    using T = typename decltype(type)::type;
    return detail::with_group(group, [&](auto g) {
      cudaError_t e = cudaSuccess;
      auto launch = [&](auto kernel, dim3 grid, int threads, auto... args) {
        if (e == cudaSuccess) {
          e = launch_dependent(detail::kSelectionLaunch, kernel, grid, threads, 0, stream, p, args...);
        }
      };
      auto level_selects = [&](int l) {
        return l < top && level_select != 0 && p.candidates[l] < kLevelMaxPairs &&
               (p.candidates[l] > kDescentMaxPairs / g.value || per_head(l));
      };
      // The run of level-selected levels from l down that one level_select_kernel launch takes (one level with
      // level_select 2): its lowest level and its widest level's candidates a head (a head's pairs).
      auto level_run = [&](int l) {
        int low = l, widest = p.candidates[l];
        while (level_select != 2 && low > last_alone && level_selects(low - 1)) {
          widest = std::max(widest, p.candidates[--low]);
        }
        return std::make_pair(low, widest);
      };
      // The top level joins the launch of the run below it (kTopJoinPairs) when that run fits kNarrowPairs: one
      // launch takes levels top .. join_low.
      int join_low = top;
      if (top_joins && level_select == 1 && top > last_alone && level_selects(top - 1) && p.top_slices == 1 &&
          p.candidates[top] <= kTopJoinPairs) {
        const auto [low, widest] = level_run(top - 1);
        if (widest <= kNarrowPairs) join_low = low;
      }
      const bool top_joined = join_low < top;
      if (top_joined) {
        with_level_select([&](auto mma, auto sel) {
          launch(level_select_kernel<T, dim.value, kNarrowPairs, kTopJoinPairs, mma.value, sel.value>,
                 dim3(p.num_queries * p.q_heads), kDescentThreads, top, join_low, select_mode);
        });
      }
      for (int l = top_joined ? join_low - 1 : top; l >= last_alone; --l) {
        if (level_selects(l)) {
          int low, widest;
          std::tie(low, widest) = level_run(l);
          with_pair_capacity<kLevelMaxPairs>(widest, [&](auto mp) {
            with_level_select([&](auto mma, auto sel) {
              launch(level_select_kernel<T, dim.value, mp.value, 0, mma.value, sel.value>,
                     dim3(p.num_queries * p.q_heads), kDescentThreads, l, low, select_mode);
            });
          });
          l = low;
          continue;
        }
        if (p.candidates[l] > 0) {
          const int64_t pairs = int64_t(l == top ? 1 : g.value) * p.candidates[l];
          const int64_t per_cta = kThreads / (dim.value / 8) * kScoreIters;
          const dim3 grid(static_cast<unsigned>((pairs + per_cta - 1) / per_cta), p.num_queries * p.kv_heads);
          launch(score_kernel<T, dim.value, g.value>, grid, kThreads, l);
        }
        if (l == top && p.top_slices > 1) {
          launch(top_k_slice_kernel, dim3(p.top_slices, p.num_queries * p.q_heads), kTopKThreads, l);
          launch(top_k_merge_kernel, dim3(p.num_queries * p.q_heads), kTopKThreads, l);
        } else {
          launch(top_k_kernel, dim3(p.num_queries * p.q_heads), top_k_threads(p.candidates[l]), l, top_head_select);
        }
      }
      const unsigned ctas = p.num_queries * p.kv_heads;
      // union_kernel (a CTA a level) and unfold_kernel (a CTA a 256 slots) take a short list's union and unfold too
      // when the (query, KV head) CTAs fill at most a quarter of the SMs: the unfused descent's 8 CTAs unfolding the
      // 1B model's ~2,200 slots at 128K (adaptive) were 0.06 ms a token slower than the two launches (session 35 call
      // 2); with 16 fixed chunks (~1,100 slots) the split is 0.03-0.05 ms a token faster at 32K and 128K, either budget
      // at 32K (H100, call 3).
      const bool split_tail = !fused && union_split && (slots > kDescentUnfoldMax || 4 * int64_t(ctas) <= sms);
      if (split_tail) {
        launch(union_kernel, dim3(ctas, p.levels), kDescentThreads);
      } else if (fused) {
        with_pair_capacity<kDescentMaxPairs>(fused_pairs, [&](auto mp) {
          launch(descent_kernel<T, dim.value, g.value, true, mp.value>, dim3(ctas), kDescentThreads, raw_slots, slots);
        });
      } else {
        launch(descent_kernel<T, dim.value, g.value, false, kNarrowPairs>, dim3(ctas), kDescentThreads, raw_slots,
               slots);  // (unfused: no level shared memory, MP unused)
      }
      if (slots > kDescentUnfoldMax || split_tail) {
        launch(unfold_kernel, dim3((slots + kUnfoldThreads - 1) / kUnfoldThreads, ctas), kUnfoldThreads, raw_slots,
               slots);
      }
      return e == cudaSuccess ? Status::kOk : Status::kCudaError;
    });
  });
}

}  // namespace gsa::kernels
