// The GSA mask rule on packed per-token metadata, callable from host code and from CUDA kernels: the one
// definition of the predicate that the kernels, their CPU twins and the runtime's scalar form all evaluate.
//
// Token metadata is kTokenMetaInts int32 values per token (TokenMetaField below): gist level (-1 raw), document
// (-1 padding), flags (kSinkFlag, kSuffixFlag), and chunk_l for l = 0..3 (level-l gists at positions < t,
// counted over the whole row). The rule (method sections 5.1 and 5.2, DESIGN.md section 4.3), L = levels,
// N = prev_chunks, d_l(q, k) = chunk_l(q) - chunk_l(k):
//
//   allowed(q, k) = 0 <= k <= q  and  doc(q) == doc(k) >= 0  and (
//         sink(k)                                               the first `sink` tokens of the document
//      or lev(k) == L-1                                         every earlier top-level gist
//      or 0 <= lev(k) < L-1 and 0 <= d_{lev(k)+1}(q, k) <= N    a gist inside its own or the N previous sections
//      or lev(q) <= 0 and 0 <= d_0(q, k) <= N )                 the local window of raw and level-0 queries
//
// In a selective layer (selective = 1) a query with the suffix flag sees no gist key through the mask: its
// gists come from chunk selection instead (unless keep_unselected_gists = 1).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define GSA_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define GSA_HOST_DEVICE inline
#endif

namespace gsa::kernels {

enum TokenMetaField : int {
  kMetaLevel = 0,
  kMetaDoc = 1,
  kMetaFlags = 2,
  kMetaChunk0 = 3,  // chunk_0 .. chunk_3 at kMetaChunk0 + l
  kTokenMetaInts = 8,
};
constexpr int32_t kSinkFlag = 1;
constexpr int32_t kSuffixFlag = 2;
constexpr int kMaxGistLevels = 4;

struct GistMaskRule {
  int32_t levels = 1;                 // L in 1..4
  int32_t prev_chunks = 1;            // N >= 0
  int32_t selective = 0;              // 1: suffix queries see gists only through selection
  int32_t keep_unselected_gists = 0;  // 1: ... except that they keep every gist the mask allows
};

// q_meta, k_meta: kTokenMetaInts values each; positions in the same row (k_pos < 0: no key).
GSA_HOST_DEVICE bool gist_mask_allows(int64_t q_pos, const int32_t* q_meta, int64_t k_pos, const int32_t* k_meta,
                                      const GistMaskRule& rule) {
  if (k_pos < 0 || k_pos > q_pos) return false;
  const int32_t doc = k_meta[kMetaDoc];
  if (doc < 0 || doc != q_meta[kMetaDoc]) return false;
  const int32_t lev_k = k_meta[kMetaLevel];
  const int32_t lev_q = q_meta[kMetaLevel];
  if (rule.selective && !rule.keep_unselected_gists && (q_meta[kMetaFlags] & kSuffixFlag) && lev_k >= 0) {
    return false;
  }
  if (k_meta[kMetaFlags] & kSinkFlag) return true;
  if (lev_k == rule.levels - 1) return true;
  if (lev_k >= 0) {
    const int32_t d = q_meta[kMetaChunk0 + lev_k + 1] - k_meta[kMetaChunk0 + lev_k + 1];
    if (d >= 0 && d <= rule.prev_chunks) return true;
  }
  if (lev_q <= 0) {
    const int32_t d = q_meta[kMetaChunk0] - k_meta[kMetaChunk0];
    if (d >= 0 && d <= rule.prev_chunks) return true;
  }
  return false;
}

}  // namespace gsa::kernels
