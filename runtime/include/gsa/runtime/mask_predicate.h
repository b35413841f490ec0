// The GSA training mask as a predicate over token metadata (never a dense N x N tensor outside tests).
//
// The rule (method sections 5.1 and 5.2; DESIGN.md section 4.3 for 3-4 levels). L = levels, N = prev_chunks,
// lev(t) = -1 for a raw token else the gist level, chunk_l(t) = level-l gists at positions < t,
// d_l(q, k) = chunk_l(q) - chunk_l(k):
//
//   allowed(q, k) = k <= q  and  doc(q) == doc(k)  and (
//         sink(k)                                          the first `sink` tokens of the document
//      or lev(k) == L-1                                    every earlier top-level gist           (5.2 A)
//      or 0 <= lev(k) < L-1 and 0 <= d_{lev(k)+1}(q,k) <= N   a level-l gist inside its own or the N previous
//                                                          level-(l+1) sections                  (5.2 B, D, E);
//                                                          the previous sections only for queries with
//                                                          lev(q) <= lev(k)+1 (the authors' builder)
//      or lev(q) <= 0 and 0 <= d_0(q,k) <= N )             the local window: own chunk and N previous chunks,
//                                                          any key type, for raw and level-0 queries (5.2 C)
//
// For L = 1 this is exactly 5.1 (every earlier gist, own + N previous chunks, sink). For L = 2 it is exactly
// 5.2: B (same section) and D (a meta-gist reads the gists it summarises) are d_1 == 0, E is 1 <= d_1 <= N.
// For L >= 3 a level-l gist as query sees the level-(l-1) gists of its own and the previous N level-l sections,
// no gist of a level below l-1 (the authors' hierarchical builder applies the previous-section rule only to
// queries that are not higher-level gists), and every top-level gist; raw tokens and level-0 gists additionally
// see their local window.
// A document without gists has chunk ids all equal, so it gets the plain causal mask.
#pragma once

#include <cstdint>

#include <ATen/ATen.h>

#include "gsa/runtime/gist_layout.h"

namespace gsa {

// Scalar reference of the rule on a host layout (positions q, k of the same row): kernels/gist_mask.h's
// gist_mask_allows, the one definition of the rule, on pack_token_meta's packing.
bool gist_mask_allowed(const GistLayout& layout, int64_t q, int64_t k);

// The kernels' packed metadata of token t (kernels::kTokenMetaInts int32 values: level, doc, flags, chunks).
void pack_token_meta(const GistLayout& layout, int64_t t, int32_t* out);

// Token metadata packed as one int64 tensor [..., kMetaFields + levels] so a single gather moves all of it.
struct TokenMeta {
  static constexpr int64_t kPos = 0;     // position in the row
  static constexpr int64_t kLevel = 1;   // -1 raw, else gist level
  static constexpr int64_t kDoc = 2;     // document; -1 for padding
  static constexpr int64_t kSink = 3;    // 0/1
  static constexpr int64_t kSuffix = 4;  // 0/1
  static constexpr int64_t kChunk0 = 5;  // chunk_0 .. chunk_{L-1}
  static constexpr int64_t kMetaFields = 5;

  at::Tensor fields;  // [..., kMetaFields + levels] int64

  at::Tensor field(int64_t f) const { return fields.select(-1, f); }
  at::Tensor chunk(int64_t level) const { return fields.select(-1, kChunk0 + level); }
};

// [B, T, F] metadata of padded rows (padding: doc = -1, pos = its index, everything else 0).
TokenMeta make_token_meta(const std::vector<const GistLayout*>& rows, int64_t padded_length, at::Device device);

// Gathers the metadata of positions idx [B, ...] (int64, values in [0, T)) from meta [B, T, F] -> [B, ..., F].
TokenMeta gather_meta(const TokenMeta& meta, const at::Tensor& idx);

// Broadcasting tensor form of the rule: q and k metadata broadcast against each other (e.g. q [B, n, Bq, 1, F]
// and k [B, n, 1, R, F]); returns bool of the broadcast shape without the field dim. Padding keys never match.
at::Tensor gist_mask_allowed(const TokenMeta& q, const TokenMeta& k, int64_t levels, int64_t prev_chunks);

}  // namespace gsa
