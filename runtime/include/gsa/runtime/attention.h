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

// q: [B, Hq, Tq, D] queries at the plan's query positions; k, v: [B, Hkv, T, D] every key (post-RoPE).
// selective: this layer selects chunks for the plan's selective queries. Returns [B, Hq, Tq, D] in q's dtype.
at::Tensor gsa_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionPlan& plan,
                         bool selective, const SelectionOptions& selection, double scale);

}  // namespace gsa
