// Private to gsa_kernels: the top-k selects of the chunk selection kernels (chunk_selection.cu), on keys that
// order floats as unsigned integers:
//   - radix_top_k: a CTA's kk largest of n scores by a 4-pass 8-bit radix select in shared-memory histograms;
//   - block_count_before: a CTA-wide exclusive count of a predicate (the selects' slot numbers), and its total;
//   - head_top_k: the kk best of one head's candidates by that head's warps of a CTA that holds several heads, a
//     bitwise search of two (or four) bits a round behind a named barrier per head;
//   - warp_top_k: the same select by one warp for up to 32 P candidates, its rounds warp reductions alone;
//   - rank_top_k: the same choices by the CTA's threads for up to NT candidates, each candidate's rank counted
//     against all the others (no rounds: one barrier, for the slots).
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "hopper.cuh"  // named_barrier_sync

namespace gsa::kernels::detail {

// Order-preserving unsigned key of a float (larger float, larger key).
__device__ __forceinline__ uint32_t order_key(float f) {
  const uint32_t bits = __float_as_uint(f);
  return (bits & 0x80000000u) ? ~bits : bits | 0x80000000u;
}

struct TopKShared {
  int hist[256];
  uint32_t prefix;
  int remaining, take_all, above, equal;
};

// The CTA's (NT threads) kk largest of scores[0, n) (-inf = absent), by a 4-pass 8-bit radix select on
// order-preserving keys: keep(i, slot) is called once for each kept i with a distinct slot in [0, kept), kept =
// min(kk, the finite scores); returns kept on every thread. Ties at the threshold: the first to arrive.
template <int NT, typename Keep>
__device__ int radix_top_k(const float* scores, int n, int64_t kk, TopKShared& sh, Keep keep) {
  const int tid = threadIdx.x;
  if (tid == 0) {
    sh.prefix = 0;
    sh.remaining = static_cast<int>(kk);
    sh.take_all = 0;
    sh.above = 0;
    sh.equal = 0;
  }
  uint32_t mask = 0;
  for (int pass = 0; pass < 4; ++pass) {
    const int shift = 24 - 8 * pass;
    for (int i = tid; i < 256; i += NT) sh.hist[i] = 0;
    __syncthreads();
    if (sh.take_all) break;
    const uint32_t prefix = sh.prefix;
    for (int base = 0; base < n; base += NT) {  // uniform trip count: every lane reaches the match
      const int c = base + tid;
      const float f = c < n ? scores[c] : -INFINITY;
      const uint32_t key = order_key(f);
      const int bin = f != -INFINITY && (key & mask) == prefix ? int((key >> shift) & 255) : 256;
      // Scores share few top bits: lanes with the same bin add once (shared-memory atomics would serialise).
      const unsigned peers = __match_any_sync(0xffffffffu, bin);
      if (bin < 256 && (tid & 31) == __ffs(peers) - 1) atomicAdd(&sh.hist[bin], __popc(peers));
    }
    __syncthreads();
    if (tid < 32) {  // warp 0 finds the bin holding the kk-th largest key: lane i owns bins 8i .. 8i+7
      const int lane = tid;
      int counts[8], own = 0;
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        counts[i] = sh.hist[lane * 8 + i];
        own += counts[i];
      }
      int at_or_above = own;  // keys in this lane's bins and every higher lane's
#pragma unroll
      for (int o = 1; o < 32; o *= 2) {
        const int v = __shfl_down_sync(0xffffffffu, at_or_above, o);
        if (lane + o < 32) at_or_above += v;
      }
      const int remaining = sh.remaining, higher = at_or_above - own;
      const bool mine = higher < remaining && remaining <= at_or_above;
      if (__ballot_sync(0xffffffffu, mine) == 0) {
        if (lane == 0) sh.take_all = 1;  // fewer candidates than kk: keep all of them
      } else if (mine) {
        int cum = higher;
        for (int i = 7; i >= 0; --i) {
          if (cum + counts[i] >= remaining) {
            sh.remaining = remaining - cum;
            sh.prefix = prefix | (uint32_t(lane * 8 + i) << shift);
            break;
          }
          cum += counts[i];
        }
      }
    }
    mask |= 255u << shift;
    __syncthreads();
  }
  const bool take_all = sh.take_all != 0 || kk <= 0;
  const uint32_t threshold = sh.prefix;
  const int ties = sh.remaining;  // keys equal to the threshold still to keep
  for (int c = tid; c < n; c += NT) {
    const float f = scores[c];
    if (f == -INFINITY || kk <= 0) continue;
    const uint32_t key = order_key(f);
    int slot = -1;
    if (take_all || key > threshold) {
      slot = atomicAdd(&sh.above, 1);
    } else if (key == threshold) {
      const int e = atomicAdd(&sh.equal, 1);
      if (e < ties) slot = atomicAdd(&sh.above, 1);
    }
    if (slot >= 0) keep(c, slot);
  }
  __syncthreads();
  return sh.above;
}

// The number of the CTA's threads below this one whose pred is true (every thread must call it); with total, also
// the CTA's count into *total. warp_count: a shared word a warp.
__device__ __forceinline__ int block_count_before(bool pred, int* warp_count, int* total = nullptr) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const unsigned votes = __ballot_sync(0xffffffffu, pred);
  if (lane == 0) warp_count[warp] = __popc(votes);
  __syncthreads();
  int before = __popc(votes & ((1u << lane) - 1u));
  for (int w = 0; w < warp; ++w) before += warp_count[w];
  if (total != nullptr) {
    *total = before - __popc(votes & ((1u << lane) - 1u));
    for (int w = warp; w < int(blockDim.x / 32); ++w) *total += warp_count[w];
  }
  __syncthreads();  // warp_count is reused
  return before;
}

// Shared memory of the heads' selects of a CTA of NT threads, P keys a thread (head_top_k): per warp, the packed
// counts of a search round (double-buffered: round r + 2 writes what round r's readers are past, behind round
// r + 1's barrier) and of the final take.
template <int NT, int P>
struct HeadSelectShared {
  uint32_t round[2][NT / 32];
  uint4 nibble[2][NT / 32];  // four-bit rounds: a warp's 15 byte counts
  uint32_t above_ties[P][NT / 32];
  uint32_t takes[P][NT / 32];
};

// Per candidate slot r, the head's count before this warp (candidate order: slot, then warp, then lane) and the
// head's total, of the per-warp counts counts[r][w] (the head's W warps from first_warp; field: a mask and shift).
// The P W counts are scanned across the warp's lanes, N consecutive counts a lane (every lane must call it; each
// thread summing all P W counts itself took ~380 instructions a call at W = 16, P = 4).
template <int W, int P, int NW>
__device__ __forceinline__ int head_prefix(const uint32_t (&counts)[P][NW], int first_warp, int own_warp,
                                           uint32_t mask, int shift, int (&before)[P]) {
  constexpr int E = P * W, N = (E + 31) / 32;
  const int lane = threadIdx.x % 32;
  int within[N], run = 0;  // this lane's counts' exclusive prefix within the lane, and their sum
#pragma unroll
  for (int n = 0; n < N; ++n) {
    const int e = lane * N + n;
    within[n] = run;
    run += e < E ? int((counts[e / W][first_warp + e % W] >> shift) & mask) : 0;
  }
  int inclusive = run;
#pragma unroll
  for (int o = 1; o < 32; o *= 2) {
    const int v = __shfl_up_sync(0xffffffffu, inclusive, o);
    if (lane >= o) inclusive += v;
  }
  const int lanes_before = inclusive - run;
#pragma unroll
  for (int r = 0; r < P; ++r) {
    const int e = r * W + own_warp, owner = e / N;
    int b = __shfl_sync(0xffffffffu, lanes_before, owner);
#pragma unroll
    for (int n = 0; n < N; ++n) {
      const int x = __shfl_sync(0xffffffffu, within[n], owner);
      if (e % N == n) b += x;
    }
    before[r] = b;
  }
  return __shfl_sync(0xffffffffu, inclusive, 31);
}

// The kk best of head h's C scores (-inf = absent) by the head's TH = NT / G threads (its W = TH / 32 warps), gist
// ids gist_of(c) into chosen[0, min(kk, finite)) in candidate order and -1 after them up to K: the kk-th largest
// order key by a bitwise search, two bits a round (the counts at or above three trial keys, packed in one word:
// one warp reduction, then the head's warps' words summed from shared memory behind a named barrier), then the
// candidates above it and the first ties (lower candidates first). The search stops early once exactly kk keys are
// at or above the threshold (~7 of 16 rounds at 132 candidates). Thread t of the head holds candidates t + r TH
// (r < P; C <= P TH, and below 2,048 when P TH <= 2,048). Every thread of the CTA calls it for its own head,
// on named barrier 1 + h (G <= 15). (One warp a head, 8 keys a lane, left 12 of 16 warps idle through ~2,400
// dependent instructions a level of the descent; this version is no faster by itself: the rounds stop early.)
// kBits = 4: four bits a round, the counts at or above 15 trial keys -- half the rounds and their barriers (the
// 1B model's 128K top level: ~7.7 rounds of two bits, ~2.6 us of level_select_kernel's ~18, session 35 call 1),
// ~2.5x the instructions a round. The same threshold, so the same choices.
template <int NT, int G, int P, int kBits = 2, typename GistOf>
__device__ void head_top_k(const float* scores, GistOf gist_of, int C, int64_t kk, int32_t* chosen, int K,
                           HeadSelectShared<NT, P>& sh) {
  constexpr int TH = NT / G, W = TH / 32;
  // Up to 2,048 keys a head (C < 2,048), the head's sums of fields 1 and 2 share one reduction.
  constexpr bool kNarrow = P * TH <= 2048;
  static_assert(TH % 32 == 0 && G <= 15, "whole warps a head, a named barrier each");
  static_assert(32 * P < 2048, "a warp's packed counts fit their 11-bit fields");
  static_assert(W <= 32, "a head's warp words summed by one warp");
  static_assert(kBits == 2 || (kBits == 4 && 32 * P < 256), "two bits a round, or four with byte counts a warp");
  const int h = threadIdx.x / TH, t = threadIdx.x % TH, lane = threadIdx.x % 32;
  const int first_warp = h * W, own_warp = t / 32, barrier = 1 + h;  // barrier 0 is __syncthreads
  const uint32_t lanes_below = (1u << lane) - 1u;
  uint32_t key[P];  // 0: absent (every finite score's key is above order_key(-inf) = 0x007fffff)
#pragma unroll
  for (int r = 0; r < P; ++r) {
    const int c = t + r * TH;
    const float f = c < C ? scores[c] : -INFINITY;
    key[r] = f == -INFINITY ? 0u : order_key(f);
  }
  uint32_t threshold = 0;  // the largest key with at least kk keys at or above it (0: fewer than kk finite)
  if constexpr (kBits == 2) {
    // The counts at or above threshold | 1, 2 and 3 << bit are independent, and the largest trial with at least kk
    // keys is the threshold two one-bit rounds would reach (counts fall as the trial rises). Packed 11 bits apart:
    // a warp's counts are at most 32 P, the head's (summed in 64 bits) at most C <= 2,047.
    for (int bit = 30, round = 0; bit >= 0; bit -= 2, ++round) {
      const uint32_t t1 = threshold | (1u << bit), t2 = threshold | (2u << bit), t3 = threshold | (3u << bit);
      uint32_t packed = 0;
#pragma unroll
      for (int r = 0; r < P; ++r) {
        packed += uint32_t(key[r] >= t1) | uint32_t(key[r] >= t2) << 11 | uint32_t(key[r] >= t3) << 22;
      }
      packed = __reduce_add_sync(0xffffffffu, packed);
      uint32_t* words = sh.round[round & 1] + first_warp;
      if (lane == 0) words[own_warp] = packed;
      detail::named_barrier_sync(barrier, TH);
      // The head's sums, warp reductions over its W words: narrow, fields 1 and 2 in one word (each sum <= C < 2,048
      // fits its 11 bits) and field 3 (bits 22-32 of a sum) apart; else each field apart.
      const uint32_t word = lane < W ? words[lane] : 0u;
      int64_t c1, c2, c3;
      if constexpr (kNarrow) {
        const uint32_t low = __reduce_add_sync(0xffffffffu, word & 0x3fffffu);
        c1 = int64_t(low & 2047u);
        c2 = int64_t(low >> 11);
      } else {
        c1 = int64_t(__reduce_add_sync(0xffffffffu, word & 2047u));
        c2 = int64_t(__reduce_add_sync(0xffffffffu, (word >> 11) & 2047u));
      }
      c3 = int64_t(__reduce_add_sync(0xffffffffu, word >> 22));
      const int64_t count = c3 >= kk ? c3 : c2 >= kk ? c2 : c1 >= kk ? c1 : -1;  // at the new threshold
      threshold = c3 >= kk ? t3 : c2 >= kk ? t2 : c1 >= kk ? t1 : threshold;
      if (count == kk) {  // the keys at or above it are the kk best: done (~7 rounds of 16 at 132 candidates)
        threshold -= 1;   // (taken: the keys above threshold; no ties left to take)
        break;
      }
    }
  } else {
    // Trial d (1..15) is threshold | d << bit; a key is at or above it when its digit v >= d, v = 15 for a key above
    // the threshold's prefix (the bits over bit + 4), its own four bits at `bit` for a key on it, 0 below or absent.
    // A warp's counts (<= 32 P < 256) in bytes, trials 4j + 1 .. 4j + 4 in word j (a key adds a byte of 1 to the
    // first min(max(v - 4j, 0), 4) of them); the head's (<= C < 2,048) from its warps' words as 16-bit fields, the
    // even and the odd bytes apart. The counts fall as d rises: the new digit is the number of trials with >= kk.
    // kk in 32 bits (the counts are at most 2,047: clamping keeps every comparison with them)
    const int want = kk < 0 ? -1 : kk > 4096 ? 4096 : int(kk);
    for (int bit = 28, round = 0; bit >= 0; bit -= 4, ++round) {
      const uint32_t high_mask = bit == 28 ? 0u : ~0u << (bit + 4);
      uint32_t bytes[4] = {0u, 0u, 0u, 0u};
#pragma unroll
      for (int r = 0; r < P; ++r) {
        const uint32_t high = key[r] & high_mask;
        const int v = key[r] == 0u || high < threshold ? 0 : high > threshold ? 15 : int((key[r] >> bit) & 15u);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int m = min(max(v - 4 * j, 0), 4);
          bytes[j] += __byte_perm(0x01010101u, 0u, 0x4444u << (4 * m));  // m low bytes of 1
        }
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) bytes[j] = __reduce_add_sync(0xffffffffu, bytes[j]);
      uint4* words = sh.nibble[round & 1] + first_warp;
      if (lane == 0) words[own_warp] = make_uint4(bytes[0], bytes[1], bytes[2], bytes[3]);
      detail::named_barrier_sync(barrier, TH);
      const uint4 word = lane < W ? words[lane] : make_uint4(0u, 0u, 0u, 0u);
      const uint32_t own[4] = {word.x, word.y, word.z, word.w};
      int digit = 0;
      bool exact = false;  // some trial has exactly kk keys at or above it: the new threshold's
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const uint32_t even = __reduce_add_sync(0xffffffffu, own[j] & 0x00ff00ffu);         // trials 4j + 1, 4j + 3
        const uint32_t odd = __reduce_add_sync(0xffffffffu, (own[j] >> 8) & 0x00ff00ffu);  // trials 4j + 2, 4j + 4
        const int counts[4] = {int(even & 0xffffu), int(odd & 0xffffu), int(even >> 16), int(odd >> 16)};
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          if (4 * j + q + 1 > 15) continue;  // (no trial 16)
          digit += counts[q] >= want;
          exact = exact || counts[q] == want;
        }
      }
      threshold |= uint32_t(digit) << bit;
      if (exact) {       // the keys at or above it are the kk best: done
        threshold -= 1;  // (taken: the keys above threshold; no ties left to take)
        break;
      }
    }
  }
  unsigned tie_votes[P];
#pragma unroll
  for (int r = 0; r < P; ++r) {
    tie_votes[r] = __ballot_sync(0xffffffffu, key[r] == threshold && key[r] != 0u);
    const unsigned above = __ballot_sync(0xffffffffu, key[r] > threshold);
    if (lane == 0) sh.above_ties[r][first_warp + own_warp] = __popc(above) | __popc(tie_votes[r]) << 16;
  }
  detail::named_barrier_sync(barrier, TH);
  int ties_before[P], unused[P];
  (void)head_prefix<W, P, NT / 32>(sh.above_ties, first_warp, own_warp, 0xffffu, 16, ties_before);
  const int ties_left = int(kk - head_prefix<W, P, NT / 32>(sh.above_ties, first_warp, own_warp, 0xffffu, 0, unused));
  unsigned take_votes[P];
#pragma unroll
  for (int r = 0; r < P; ++r) {
    const bool tie = (tie_votes[r] >> lane) & 1u;
    const bool take = key[r] > threshold || (tie && ties_before[r] + __popc(tie_votes[r] & lanes_below) < ties_left);
    take_votes[r] = __ballot_sync(0xffffffffu, take);
    if (lane == 0) sh.takes[r][first_warp + own_warp] = __popc(take_votes[r]);
  }
  detail::named_barrier_sync(barrier, TH);
  int takes_before[P];
  const int taken = head_prefix<W, P, NT / 32>(sh.takes, first_warp, own_warp, 0xffffffffu, 0, takes_before);
#pragma unroll
  for (int r = 0; r < P; ++r) {
    const int slot = takes_before[r] + __popc(take_votes[r] & lanes_below);
    if (((take_votes[r] >> lane) & 1u) && slot < K) chosen[slot] = gist_of(t + r * TH);
  }
  for (int j = taken + t; j < K; j += TH) chosen[j] = -1;
}

// head_top_k's select by the calling warp alone, for C <= 32 P candidates (lane t holds candidates t + 32 r, r < P):
// the kk best of scores[0, C) (-inf = absent), gist ids gist_of(c) into chosen[0, min(kk, finite)) in candidate
// order and -1 after them up to K; the same bitwise search (two bits a round, three packed counts, the early stop
// at exactly kk) and the same ties (the lower candidates first), so the same choices. A round is one warp
// reduction: no shared-memory words, no barrier -- where head_top_k spread 132 candidates over 16 warps behind a
// named barrier a round (the levels below the 1B model's 128K top level: their two selects were 30% of
// level_select_kernel's stall samples, session 34 call 1). Every lane of the warp must call it.
template <int P, typename GistOf>
__device__ void warp_top_k(const float* scores, GistOf gist_of, int C, int64_t kk, int32_t* chosen, int K) {
  static_assert(32 * P < 2048, "a warp's packed counts fit their 11-bit fields");
  const int lane = threadIdx.x % 32;
  const uint32_t lanes_below = (1u << lane) - 1u;
  uint32_t key[P];  // 0: absent (every finite score's key is above order_key(-inf) = 0x007fffff)
#pragma unroll
  for (int r = 0; r < P; ++r) {
    const int c = lane + 32 * r;
    const float f = c < C ? scores[c] : -INFINITY;
    key[r] = f == -INFINITY ? 0u : order_key(f);
  }
  uint32_t threshold = 0;  // the largest key with at least kk keys at or above it (0: fewer than kk finite)
  for (int bit = 30; bit >= 0; bit -= 2) {
    const uint32_t t1 = threshold | (1u << bit), t2 = threshold | (2u << bit), t3 = threshold | (3u << bit);
    uint32_t packed = 0;
#pragma unroll
    for (int r = 0; r < P; ++r) {
      packed += uint32_t(key[r] >= t1) | uint32_t(key[r] >= t2) << 11 | uint32_t(key[r] >= t3) << 22;
    }
    packed = __reduce_add_sync(0xffffffffu, packed);
    const int64_t c1 = packed & 2047u, c2 = (packed >> 11) & 2047u, c3 = packed >> 22;
    const int64_t count = c3 >= kk ? c3 : c2 >= kk ? c2 : c1 >= kk ? c1 : -1;  // at the new threshold
    threshold = c3 >= kk ? t3 : c2 >= kk ? t2 : c1 >= kk ? t1 : threshold;
    if (count == kk) {  // the keys at or above it are the kk best: done
      threshold -= 1;   // (taken: the keys above threshold; no ties left to take)
      break;
    }
  }
  int above = 0;
#pragma unroll
  for (int r = 0; r < P; ++r) above += __popc(__ballot_sync(0xffffffffu, key[r] > threshold));
  const int64_t ties_left = kk - above;  // keys equal to the threshold still to take, lower candidates first
  int ties_before = 0, taken = 0;
#pragma unroll
  for (int r = 0; r < P; ++r) {
    const bool tie = key[r] == threshold && key[r] != 0u;
    const unsigned tie_votes = __ballot_sync(0xffffffffu, tie);
    const bool take = key[r] > threshold || (tie && ties_before + __popc(tie_votes & lanes_below) < ties_left);
    const unsigned take_votes = __ballot_sync(0xffffffffu, take);
    const int slot = taken + __popc(take_votes & lanes_below);
    if (take && slot < K) chosen[slot] = gist_of(lane + 32 * r);
    ties_before += __popc(tie_votes);
    taken += __popc(take_votes);
  }
  for (int j = taken + lane; j < K; j += 32) chosen[j] = -1;
}

// The kk best of scores[0, C) (-inf = absent) by the CTA's NT threads, for 0 < C <= NT: gist ids gist_of(c) into
// chosen[0, min(kk, finite)) in candidate order and -1 after them up to K -- the choices of head_top_k and
// warp_top_k (order keys; ties: the lower candidates first). A candidate is kept when fewer than kk candidates
// rank above it (a larger key, or the same key and a lower index): S = the largest power of two <= min(NT / C, 32)
// threads a candidate (candidate t / S) each count over a segment of ~C / S of the others, summed across their
// lanes; the kept candidates' slots are block counts (block_count_before). ~C^2 / NT comparisons a thread, no
// rounds: where warp_top_k's search took ~7 dependent rounds of warp reductions in one warp while the CTA's other
// 15 waited (132 candidates a head: ~1.7 us a level on an H100, session 34's stall samples). warp_count: NT / 32
// shared words. Every thread of the CTA (NT threads) calls it. scores[C, C + 3) are read (and ignored).
template <int NT, typename GistOf>
__device__ void rank_top_k(const float* scores, GistOf gist_of, int C, int64_t kk, int32_t* chosen, int K,
                           int* warp_count) {
  const int tid = threadIdx.x;
  int S = 1;  // threads a candidate: a power of two, lanes of one warp
  while (S < 32 && 2 * S * C <= NT) S *= 2;
  const int c = tid / S, part = tid % S;
  const int span = ((C + S - 1) / S + 3) / 4 * 4;  // candidates a thread compares, whole float4s
  const float own = c < C ? scores[c] : -INFINITY;
  const uint32_t key = order_key(own);
  int above = 0;  // candidates of this thread's segment ranked above c
  if (c < C) {
    const int begin = part * span, end = min(begin + span, C);
    for (int b = begin; b < end; b += 4) {
      const float4 v = *reinterpret_cast<const float4*>(scores + b);
      const float f[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const uint32_t other = order_key(f[i]);
        const int o = b + i;
        above += int(o < end && (other > key || (other == key && o < c)));
      }
    }
  }
  for (int o = 1; o < S; o *= 2) above += __shfl_xor_sync(0xffffffffu, above, o);
  // order_key(-inf) is below every finite key: an absent candidate never ranks above a present one.
  const bool take = part == 0 && own != -INFINITY && above < kk;
  int taken;
  const int before = block_count_before(take, warp_count, &taken);
  if (take && before < K) chosen[before] = gist_of(c);
  for (int j = taken + tid; j < K; j += NT) chosen[j] = -1;
}

}  // namespace gsa::kernels::detail
