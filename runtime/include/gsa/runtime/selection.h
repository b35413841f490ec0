// Chunk selection for selective queries (method section 8, DESIGN.md section 4.4).
//
// Contract, per selective query q, KV group and query head h of the group:
// - scores are raw q_h . k over gist keys (post-RoPE, no 1/sqrt(d), fp32);
// - budget k: adaptive (default) k = floor(floor(floor(Lk / r) / Gq) / c0) + 1 with Lk the keys q can see in its
//   document (its position in the document + 1, so prefill and decode choose identically), r = c0 * c1^(L-1),
//   Gq = query heads per KV head; or fixed k. Per level kk_l = min(k, max(1, floor(G_l / 4))), G_l the level-l
//   gists of the document;
// - top-down: kk_{L-1} of all top-level gists of the document; at each lower level only the children of the
//   parents chosen by the same head are candidates (gathered explicitly: cost O(kk * fanout), not O(G_l));
//   -inf candidates are never chosen;
// - the heads of a group take the union; keep set = raw tokens of the chosen level-0 chunks (sink included for
//   chunk 0) + the chosen gists of every level.
// Selection is an argmax: no gradient flows through it (callers attend to the kept keys with gradients).
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

#include "gsa/config/options.h"
#include "gsa/kernels/kv_rows.h"
#include "gsa/runtime/attention_plan.h"

namespace gsa {

// floor(floor(floor(key_length / compression) / gq) / c0) + 1 (the reference's adaptive top-k).
int64_t adaptive_top_k(int64_t key_length, int64_t compression, int64_t gq, int64_t c0);
// r = c0 * c1^(levels-1).
int64_t compression_ratio(const GistOptions& gist);

struct ChunkSelection {
  std::vector<at::Tensor> selected;  // [L] of [Ns, Hkv, M_l]: level-l gist indices (row-wide) chosen by any head
                                     // of the group; unique, -1 padding (LibTorch path: ascending, -1 first)
  at::Tensor key_pos;                // [Ns, Hkv, R]: positions to unfold (raw tokens of chosen chunks, chosen
                                     // gists); -1 padding
};

// q: [Ns, Hq, D] the selective queries of plan.selection; k: [B, Hkv, T, D] post-RoPE keys, or [B, Hkv, S, D]
// with key_slot [B, T] giving the column of each position (it must hold every gist; see attention.h KeyView).
ChunkSelection select_chunks(const at::Tensor& q, const at::Tensor& k, const AttentionPlan& plan,
                             const SelectionOptions& options, const at::Tensor& key_slot = at::Tensor());
// The same over a plan's selection tables alone (decode plans: decode_plan.h); gist: the rows' gist options.
// backend: AUTO runs the selection kernels (kernels/chunk_selection.h) on CUDA bf16/fp16 q and k of head dim 64
// or 128, GQA 1-8 (key_slot: int64 [B, T]), and LibTorch ops otherwise; KERNELS forces them (their CPU twin on the CPU;
// unsupported inputs are an error); REFERENCE never runs them. The kernels' lists hold the same sets in another
// order (-1 after the indices). covered [B, P] bool (optional): rows written as -1 in key_pos.
ChunkSelection select_chunks(const at::Tensor& q, const at::Tensor& k, const SelectionPlan& selection,
                             const GistOptions& gist, const SelectionOptions& options,
                             const at::Tensor& key_slot = at::Tensor(),
                             AttentionBackend backend = AttentionBackend::kAuto,
                             const at::Tensor& covered = at::Tensor());
// The selection kernels over keys given as kv_rows.h rows (per-sequence caches), q [Ns, Hq, D] bf16/fp16 on the
// rows' device (the CPU twin for CPU tensors); the caller vouches for the rows. Its lists are int32, as the
// kernels write them (select_chunks returns int64 everywhere; a decode step that feeds them to the sparse decode
// kernels saves the two conversions).
// key_pos_out (optional): an int32 [Ns, Hkv, R] view with contiguous rows (R = selection_key_slots), e.g. the
// tail of a wider list, that key_pos is written into and returned as. key_slot (optional): int64 [B, T], k's row
// of each position (as select_chunks's; every gist must have one).
ChunkSelection select_chunks_rows(const at::Tensor& q, const kernels::KvRows& k, int64_t kv_heads,
                                  const SelectionPlan& selection, const GistOptions& gist,
                                  const SelectionOptions& options, const at::Tensor& covered = at::Tensor(),
                                  const at::Tensor& key_pos_out = at::Tensor(),
                                  const at::Tensor& key_slot = at::Tensor());
// Why the selection kernels cannot take these inputs ("" when they can): q [Ns, Hq, D], k [B, Hkv, W, D],
// key_slot optional.
std::string selection_kernels_unsupported(const at::Tensor& q, const at::Tensor& k, const at::Tensor& key_slot,
                                          const GistOptions& gist);
// select_chunks_rows over one key tensor k [B, Hkv, W, D] (key_slot as select_chunks's), writing key_pos into
// key_pos_out; inputs the kernels cannot take are an error.
ChunkSelection select_chunks_into(const at::Tensor& q, const at::Tensor& k, const SelectionPlan& selection,
                                  const GistOptions& gist, const SelectionOptions& options, const at::Tensor& key_slot,
                                  const at::Tensor& covered, const at::Tensor& key_pos_out);
// R, the width of select_chunks_rows's key_pos for these heads, tables and options.
int64_t selection_key_slots(int64_t q_heads, int64_t kv_heads, const SelectionPlan& selection,
                            const GistOptions& gist, const SelectionOptions& options);
// The LibTorch-ops selection alone.
ChunkSelection select_chunks_reference(const at::Tensor& q, const at::Tensor& k, const SelectionPlan& selection,
                                       const GistOptions& gist, const SelectionOptions& options,
                                       const at::Tensor& key_slot = at::Tensor());

}  // namespace gsa
