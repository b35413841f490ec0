// Efficient GSA attention with autograd, on LibTorch ops (CPU and CUDA tensors).
//
// Contract: gsa_attention(q, k, v, plan, selective) equals softmax(scale * q k^T + mask) v where the mask is
// the predicate of mask_predicate.h for ordinary queries and, in a selective layer, the selection keep set of
// selection.h for the plan's selective queries (am = allowed and not a gist, plus the unfolded chunks and chosen
// gists; plus the visible gists with keep_unselected_gists). It is computed part by part (band, sink, gists of
// each kind, selected chunks; attention_plan.h), each a masked softmax over gathered keys, and the parts are
// merged in fp32 by log-sum-exp, so memory is O(T * (band + visible gists)), never T x T. Gradients flow to q, k
// and v through every kept key (selection itself is an argmax). GQA: query head h uses KV head h / (Hq / Hkv).
#pragma once

#include <vector>

#include <ATen/ATen.h>

#include "gsa/config/options.h"
#include "gsa/runtime/attention_plan.h"

namespace gsa {

// One part's result: output rows normalised by the part's own softmax, and its log-sum-exp (-inf if empty).
struct PartialAttention {
  at::Tensor out;  // [B, Hq, Tq_padded, D] fp32
  at::Tensor lse;  // [B, Hq, Tq_padded] fp32
};

// Merges partial results in fp32 (autograd-capable): out = sum_p exp(lse_p - lse) out_p.
PartialAttention merge_partials(const std::vector<PartialAttention>& parts);

// Masked softmax attention over one gathered key set. q [.., M, D], k, v [.., R, D]; mask broadcasts to
// scores_view (the shape the [.., M, R] scores are viewed as). -> out [.., M, D] fp32, lse [.., M] fp32.
PartialAttention masked_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                  const at::Tensor& mask, at::IntArrayRef scores_view, double scale);

// Keys for attention when k/v hold only some positions of the plan's rows (sequence parallelism, sharded KV
// caches): slot[b, t] is the column of k/v that holds position t of row b, or -1 when it is not held here;
// (query, key) pairs of keys not held are left out of the result. Undefined slot: column t holds position t.
struct KeyView {
  at::Tensor k, v;   // [B, Hkv, S, D] post-RoPE
  at::Tensor slot;   // [B, T] int64, or undefined
};

// The selective queries' unfolded keys that the KeyView does not hold: the caller attends to them where they
// live (unfold routing) and merges the result through selective_to_grid.
struct RemoteSelection {
  at::Tensor q;        // [Ns, Hq, D] the plan's selective queries (carries autograd)
  at::Tensor key_pos;  // [Ns, Hkv, R] positions not held here; -1 = nothing
};

// The part-wise attention over the keys `keys` holds, merged, on the plan's padded query grid
// ([B, Hq, Tq_padded, D] and [B, Hq, Tq_padded]). selection_keys: where select_chunks reads gist keys (default:
// keys). remote: if non-null and the layer selects, receives the selected keys not held here (else dropped).
PartialAttention gsa_attention_partial(const at::Tensor& q, const KeyView& keys, const AttentionPlan& plan,
                                       bool selective, const SelectionOptions& selection, double scale,
                                       const KeyView* selection_keys = nullptr, RemoteSelection* remote = nullptr);

// A query-grid result (out [B, Hq, Tg, D] in any dtype, lse [B, Hq, Tg] fp32; Tg the plan's queries, padded or
// not) with the plan's selective queries' rows merged with `selected` ([Ns, Hq, D] / [Ns, Hq] fp32) by
// log-sum-exp; the other rows as they are, out in its dtype. Touches only the Ns x Hq selected rows (plus one
// copy of the grid): the full-grid merge of merge_partials would read and write every row in fp32.
PartialAttention merge_selected_rows(const PartialAttention& grid, const PartialAttention& selected,
                                     const AttentionPlan& plan);

// Per-selective-query results [Ns, Hq, D] / [Ns, Hq] placed on the plan's padded query grid (-inf elsewhere).
// The grid depends on out and lse even when the plan has no selective query (Ns = 0).
PartialAttention selective_to_grid(const AttentionPlan& plan, const at::Tensor& out, const at::Tensor& lse);

// The grid result cut to the plan's queries in `dtype`: [B, Hq, Tq, D].
at::Tensor finish_attention(const PartialAttention& merged, const AttentionPlan& plan, at::ScalarType dtype);

// q: [B, Hq, Tq, D] queries at the plan's query positions; k, v: [B, Hkv, T, D] every key (post-RoPE).
// selective: this layer selects chunks for the plan's selective queries. Returns [B, Hq, Tq, D] in q's dtype.
at::Tensor gsa_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionPlan& plan,
                         bool selective, const SelectionOptions& selection, double scale);

}  // namespace gsa
