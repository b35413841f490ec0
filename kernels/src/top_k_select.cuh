// block_top_k: the kk largest of n fp32 scores, by one CTA, for the selection kernels' top-k (chunk_selection.cu).
//
// The select works on order-preserving 32-bit keys of the scores (a larger float, a larger key) and narrows a key
// window [lo, hi] that holds the kk-th largest: each round takes the window's smallest and largest key (a block
// reduction), bins the keys by the bits below their common prefix, 8 bits (256 bins: the bins adapt to the
// scores' spread, so one round usually leaves a few dozen keys in the threshold bin, where a fixed 8-bit radix
// digit of floats of one sign and exponent leaves most of them), keeps every key above the bin that holds the
// kk-th, and either finishes there or takes that bin as the next window:
//   - the bin holds exactly the keys still needed, or only equal keys: keep them (the first to arrive);
//   - it holds at most kTieCapacity keys: they go to a list in shared memory, each ranks itself against the
//     list (key, then index) and keeps itself below the remaining need;
//   - else: the next round.
// Four barriers a round plus one; the ranking of all n scores that it replaces costs n^2 / NT comparisons per
// thread (17.7 us for 512 candidates on an H200 under Nsight Compute) and the fixed 4-pass radix twelve
// barriers (7 us at 1,024).
#pragma once

#include <cstdint>

namespace gsa::kernels::detail {

constexpr int kTopKBins = 256;
constexpr int kTieCapacity = 1024;

// Order-preserving unsigned key of a float (larger float, larger key); -inf maps to 0x007fffff.
__device__ __forceinline__ uint32_t order_key(float f) {
  const uint32_t bits = __float_as_uint(f);
  return (bits & 0x80000000u) ? ~bits : bits | 0x80000000u;
}

struct TopKShared {
  int hist[kTopKBins];
  uint32_t tie_key[kTieCapacity];
  int tie_item[kTieCapacity];
  uint32_t min_key, max_key;  // of the window's keys, this round
  int kept;                   // slots handed out
  int ties;                   // entries of the tie list
  int bin, above, in_bin;     // the threshold bin, keys above it, keys in it
};

// The CTA's (NT threads) kk largest of scores[0, n) (-inf = absent): keep(i, slot) is called once for each kept
// i with a distinct slot in [0, kept), kept = min(kk, the finite scores); returns kept on every thread. Slots
// follow arrival, not rank. Every thread of the CTA must call it.
template <int NT, typename Keep>
__device__ int block_top_k(const float* scores, int n, int64_t kk, TopKShared& sh, Keep keep) {
  const int tid = threadIdx.x, lane = tid % 32;
  constexpr uint32_t kAbsent = 0x007fffffu;  // order_key(-inf): below every finite score's key
  uint32_t lo = kAbsent + 1, hi = 0xffffffffu;  // the window
  int need = kk > 0 ? static_cast<int>(kk < n ? kk : n) : 0;
  if (tid == 0) sh.kept = 0;
  while (need > 0) {
    // 1. The window's smallest and largest key.
    if (tid == 0) {
      sh.min_key = 0xffffffffu;
      sh.max_key = 0u;
      sh.ties = 0;
    }
    for (int i = tid; i < kTopKBins; i += NT) sh.hist[i] = 0;
    __syncthreads();
    uint32_t mn = 0xffffffffu, mx = 0u;
    for (int i = tid; i < n; i += NT) {
      const uint32_t key = order_key(scores[i]);
      if (key >= lo && key <= hi) {
        mn = min(mn, key);
        mx = max(mx, key);
      }
    }
    mn = __reduce_min_sync(0xffffffffu, mn);
    mx = __reduce_max_sync(0xffffffffu, mx);
    if (lane == 0) {
      atomicMin(&sh.min_key, mn);
      atomicMax(&sh.max_key, mx);
    }
    __syncthreads();
    mn = sh.min_key;
    mx = sh.max_key;
    if (mn > mx) break;  // no finite score left: fewer than kk
    // 2. Bins of the bits below the common prefix of mn and mx, 8 of them.
    const int spread = mn == mx ? 0 : 32 - __clz(mn ^ mx);
    const int shift = spread > 8 ? spread - 8 : 0;
    const uint32_t base = mn >> shift;
    for (int b = 0; b < n; b += NT) {  // uniform trip count: every lane reaches the match
      const int i = b + tid;
      const uint32_t key = i < n ? order_key(scores[i]) : 0u;
      const int bin = i < n && key >= lo && key <= hi ? int((key >> shift) - base) : kTopKBins;
      const unsigned peers = __match_any_sync(0xffffffffu, bin);  // lanes of one bin add once
      if (bin < kTopKBins && lane == __ffs(peers) - 1) atomicAdd(&sh.hist[bin], __popc(peers));
    }
    __syncthreads();
    // 3. Warp 0 finds the bin holding the need-th largest key: lane i owns bins 8i .. 8i+7.
    if (tid < 32) {
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
      const int higher = at_or_above - own;
      const bool mine = higher < need && need <= at_or_above;
      if (__ballot_sync(0xffffffffu, mine) == 0) {  // fewer keys than needed in the window: keep them all
        if (lane == 0) {
          sh.bin = -1;
          sh.above = 0;
          sh.in_bin = 0;
        }
      } else if (mine) {  // one lane: the window holds at least `need` keys
        int cum = higher;
        for (int i = 7; i >= 0; --i) {
          if (cum + counts[i] >= need) {
            sh.bin = lane * 8 + i;
            sh.above = cum;
            sh.in_bin = counts[i];
            break;
          }
          cum += counts[i];
        }
      }
    }
    __syncthreads();
    const int bin = sh.bin, above = sh.above, in_bin = sh.in_bin;
    const int still = need - above;  // keys of the threshold bin still to keep
    // All of the bin when it is exactly what is needed or its keys are equal; its keys to the tie list when they
    // fit; else only the keys above it this round.
    const bool take_bin = bin < 0 || in_bin == still || shift == 0;
    const bool list_bin = !take_bin && in_bin <= kTieCapacity;
    for (int i = tid; i < n; i += NT) {
      const uint32_t key = order_key(scores[i]);
      if (key < lo || key > hi) continue;
      const int b = int((key >> shift) - base);
      if (b > bin) {
        keep(i, atomicAdd(&sh.kept, 1));
      } else if (b == bin) {
        if (take_bin) {  // equal keys, more than needed: the first `still` to arrive
          if (in_bin == still || atomicAdd(&sh.ties, 1) < still) keep(i, atomicAdd(&sh.kept, 1));
        } else if (list_bin) {
          const int t = atomicAdd(&sh.ties, 1);
          sh.tie_key[t] = key;
          sh.tie_item[t] = i;
        }
      }
    }
    __syncthreads();
    if (take_bin) break;
    need = still;
    if (list_bin) {
      const int ties = sh.ties, first_slot = sh.kept;
      for (int t = tid; t < ties; t += NT) {
        const uint32_t key = sh.tie_key[t];
        const int item = sh.tie_item[t];
        int rank = 0;  // better keys of the list; equal keys: the lower index first
        for (int u = 0; u < ties; ++u) {
          const uint32_t other = sh.tie_key[u];
          rank += other > key || (other == key && sh.tie_item[u] < item);
        }
        if (rank < need) keep(item, first_slot + rank);
      }
      __syncthreads();
      if (tid == 0) sh.kept = first_slot + need;
      break;
    }
    lo = (base + bin) << shift;  // the next window: the threshold bin's keys
    hi = lo + ((1u << shift) - 1u);
  }
  __syncthreads();
  return sh.kept;
}

}  // namespace gsa::kernels::detail
