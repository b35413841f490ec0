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
//      or 0 <= lev(k) < L-1 and d_{lev(k)+1}(q, k) == 0         a gist inside its own section
//      or 0 <= lev(k) < L-1 and lev(q) <= lev(k)+1               ... or the N previous sections, for queries that
//         and 1 <= d_{lev(k)+1}(q, k) <= N                        are not gists of a level above that section's
//      or lev(q) <= 0 and 0 <= d_0(q, k) <= N )                 the local window of raw and level-0 queries
//
// The previous-section clause follows the authors' hierarchical mask builder (any number of levels): it skips
// queries that are higher-level gists than the section. With 1-2 levels no query is, so this is method 5.1 / 5.2
// exactly; with 3-4 levels a level-2 gist does not see the level-0 gists of the previous level-1 section
// (N = 1, S = 0, C0 = 1, C1 = 2, L = 3, layout ".012": the level-2 gist at q = 3 sees "..11").
//
// In a selective layer (selective = 1) a query with the suffix flag sees no gist key through the mask: its
// gists come from chunk selection instead (unless keep_unselected_gists = 1). It still sees the sinks.
//
// Sinks and top-level gists have the same rule but for that clause, so the kernels' tile plan (runtime/tile_plan.h)
// keeps the sinks in the top-level class's tiles, each marked by chunk_up = -1 (kSinkChunkUp; the top class has no
// section above it, so its keys' chunk_up is otherwise unused and >= 0).
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

// Key classes: every key is a sink token, another raw token, or a gist of some level (the class of a kernel key
// tile is uniform, so kernels fix it per tile; the top-level class's tiles also hold the sinks, see above).
constexpr int32_t kClassSink = -2;
constexpr int32_t kClassRaw = -1;  // classes >= 0 are gist levels
constexpr int32_t kSinkChunkUp = -1;  // MaskKey::chunk_up of a sink in a top-level class tile

// What the rule needs of a query, the chunk ids already picked for the key class at hand.
struct MaskQuery {
  int64_t pos;
  int32_t doc, level;
  int32_t chunk0;     // chunk_0(q)
  int32_t chunk_up;   // chunk_{c+1}(q) for a key class c in [0, L-2]; unused otherwise
  bool sees_gists;    // false for a suffix query in a selective layer (without keep_unselected_gists)
};

// What the rule needs of a key of class key_class.
struct MaskKey {
  int64_t pos;        // < 0: no key
  int32_t doc;
  int32_t chunk0;     // chunk_0(k)
  int32_t chunk_up;   // chunk_{c+1}(k) for a gist of class c in [0, L-2]; for the top class kSinkChunkUp on a
                      // sink, anything >= 0 on a gist
};

GSA_HOST_DEVICE bool within(int32_t d, int32_t prev_chunks) {
  return static_cast<uint32_t>(d) <= static_cast<uint32_t>(prev_chunks);  // 0 <= d <= N
}

// The rule for one key of a known class (the header's rule, case by case).
GSA_HOST_DEVICE bool gist_mask_allows_class(int32_t key_class, const MaskQuery& q, const MaskKey& k,
                                            const GistMaskRule& rule) {
  if (k.pos < 0 || k.pos > q.pos || k.doc != q.doc || k.doc < 0) return false;
  if (key_class == kClassSink) return true;
  const bool local = q.level <= 0 && within(q.chunk0 - k.chunk0, rule.prev_chunks);
  if (key_class == kClassRaw) return local;
  if (key_class == rule.levels - 1) return q.sees_gists || k.chunk_up == kSinkChunkUp;
  if (!q.sees_gists) return false;
  const int32_t sections = q.level > key_class + 1 ? 0 : rule.prev_chunks;  // previous sections, see the header
  return within(q.chunk_up - k.chunk_up, sections) || local;
}

// The rule for many keys of one class against one query, in 32-bit arithmetic, for kernels that test a query
// against a tile of keys: fold_mask_query folds the query's and the class's parts once, folded_mask_allows then
// costs a few integer operations a key and equals gist_mask_allows_class (test_gist_mask_folded checks it). A
// query that can see no key of the class gets document -2 (keys have documents >= -1); k <= q with k >= 0 is one
// unsigned compare (positions < 2^31); the local window of a query above level 0 is emptied by moving its chunk
// far below every key's.
struct FoldedMaskQuery {
  uint32_t pos;       // the query's position as unsigned (a key at -1 lies above every position)
  int32_t doc;        // -2: no key of the class is visible
  int32_t local;      // chunk_0(q), or far below every chunk for a query above level 0
  int32_t up;         // chunk_{c+1}(q) for a gist class c below the top; for the top class the bound a key's
                      // chunk_up must stay below (INT32_MAX: every key; 0: the sinks only)
  uint32_t sections;  // previous sections a gist key of the class may lie in
};

// q.pos < 0: a query past its row's end (it sees nothing).
GSA_HOST_DEVICE FoldedMaskQuery fold_mask_query(int32_t key_class, const MaskQuery& q, const GistMaskRule& rule) {
  const bool top = key_class == rule.levels - 1;
  const bool sees = key_class == kClassSink || top || (key_class == kClassRaw ? q.level <= 0 : q.sees_gists);
  return {static_cast<uint32_t>(q.pos), q.pos >= 0 && q.doc >= 0 && sees ? q.doc : -2,
          q.level <= 0 ? q.chunk0 : INT32_MIN / 2, top ? (q.sees_gists ? INT32_MAX : 0) : q.chunk_up,
          q.level > key_class + 1 ? 0u : static_cast<uint32_t>(rule.prev_chunks)};
}

// key_pos < 0: no key.
GSA_HOST_DEVICE bool folded_mask_allows(int32_t key_class, const FoldedMaskQuery& q, int32_t key_pos,
                                        int32_t key_doc, int32_t key_chunk0, int32_t key_chunk_up,
                                        const GistMaskRule& rule) {
  const uint32_t prev = static_cast<uint32_t>(rule.prev_chunks);
  const bool allowed = static_cast<uint32_t>(key_pos) <= q.pos && key_doc == q.doc;
  if (key_class == kClassRaw) return allowed && static_cast<uint32_t>(q.local - key_chunk0) <= prev;
  if (key_class >= 0 && key_class != rule.levels - 1) {  // a gist below the top: its section clause
    return allowed && (static_cast<uint32_t>(q.up - key_chunk_up) <= q.sections ||
                       static_cast<uint32_t>(q.local - key_chunk0) <= prev);
  }
  if (key_class == rule.levels - 1) return allowed && key_chunk_up < q.up;  // a gist, or a sink (kSinkChunkUp)
  return allowed;
}

// The class of a key from its packed metadata.
GSA_HOST_DEVICE int32_t key_class_of(const int32_t* k_meta) {
  if (k_meta[kMetaFlags] & kSinkFlag) return kClassSink;
  return k_meta[kMetaLevel];  // kClassRaw for raw tokens
}

// Whether query q_meta sees gist keys through the mask in this layer.
GSA_HOST_DEVICE bool query_sees_gists(const int32_t* q_meta, const GistMaskRule& rule) {
  return !(rule.selective && !rule.keep_unselected_gists && (q_meta[kMetaFlags] & kSuffixFlag));
}

// Which chunk ids the rule compares for key class key_class: 1 + c (chunk_{c+1}) for a gist class c below the top,
// else 0 (chunk_0; MaskQuery::chunk_up and MaskKey::chunk_up are then unused). An index into a token's chunk ids
// (kMetaChunk0 + index in the packed metadata).
GSA_HOST_DEVICE int32_t chunk_up_index(int32_t key_class, int32_t levels) {
  return key_class >= 0 && key_class + 1 < levels ? key_class + 1 : 0;
}

// Query q_pos (< 0: past its row's end) with packed metadata q_meta as the rule sees it against key class key_class.
GSA_HOST_DEVICE MaskQuery mask_query_of(int64_t q_pos, const int32_t* q_meta, int32_t key_class,
                                        const GistMaskRule& rule) {
  return {q_pos, q_meta[kMetaDoc], q_meta[kMetaLevel], q_meta[kMetaChunk0],
          q_meta[kMetaChunk0 + chunk_up_index(key_class, rule.levels)], query_sees_gists(q_meta, rule)};
}

// Whether a pair of tiles that the kernels' plan lists as whole (its entry carries kFullTile, sparse_attention.h)
// is taken whole by a kernel, for a run of queries whose flags are run_flags: a run of suffix queries in a selective
// layer sees no gist key through the mask, so a gist-class tile (the sinks' included) is never whole for it.
GSA_HOST_DEVICE bool tile_taken_whole(bool listed_whole, int32_t key_class, int32_t run_flags,
                                      const GistMaskRule& rule) {
  return listed_whole &&
         !(key_class >= 0 && (run_flags & kSuffixFlag) && rule.selective && !rule.keep_unselected_gists);
}

// q_meta, k_meta: kTokenMetaInts values each; positions in the same row (k_pos < 0: no key).
GSA_HOST_DEVICE bool gist_mask_allows(int64_t q_pos, const int32_t* q_meta, int64_t k_pos, const int32_t* k_meta,
                                      const GistMaskRule& rule) {
  if (k_pos < 0) return false;
  const int32_t key_class = key_class_of(k_meta);
  const MaskQuery q = mask_query_of(q_pos, q_meta, key_class, rule);
  const MaskKey k{k_pos, k_meta[kMetaDoc], k_meta[kMetaChunk0],
                  k_meta[kMetaChunk0 + chunk_up_index(key_class, rule.levels)]};
  return gist_mask_allows_class(key_class, q, k, rule);
}

}  // namespace gsa::kernels
