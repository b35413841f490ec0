#include "gsa/runtime/attention.h"

#include <limits>

#include "gsa/runtime/error.h"
#include "gsa/runtime/mask_predicate.h"
#include "gsa/runtime/selection.h"

namespace gsa {
namespace {

using at::indexing::Slice;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Masked softmax attention over one key set, with its log-sum-exp.
// scores_view: the shape the [.., M, R] scores take for `mask` to broadcast; results are [.., M, D] and [.., M].
PartialAttention attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                        at::IntArrayRef scores_view, double scale) {
  at::Tensor scores = at::matmul(q, k.transpose(-1, -2)).to(at::kFloat) * scale;    // [.., M, R]
  const auto flat_shape = scores.sizes().vec();
  scores = scores.view(scores_view).masked_fill(mask.logical_not(), kNegInf).view(flat_shape);
  at::Tensor m = std::get<0>(scores.max(-1, /*keepdim=*/true)).detach();
  m = at::where(at::isfinite(m), m, at::zeros_like(m));
  at::Tensor p = (scores - m).exp();                                                 // masked keys -> 0
  at::Tensor l = p.sum(-1);                                                          // [.., M]
  // Empty rows (l == 0) divide by 1, never by a tiny clamp: the division's backward squares the divisor, and a
  // squared tiny value underflows to 0 and turns 0/0 into NaN that leaks into dv through p^T dO.
  at::Tensor nonempty = l > 0;
  at::Tensor safe_l = at::where(nonempty, l, at::ones_like(l));
  at::Tensor out = at::matmul(p.to(v.scalar_type()), v).to(at::kFloat) / safe_l.unsqueeze(-1);
  at::Tensor lse = at::where(nonempty, m.squeeze(-1) + safe_l.log(), at::full_like(l, kNegInf));
  return {out, lse};
}

// [B, Hkv, nb, g*block, X] (X = D or absent) -> [B, Hq, nb*block, X]
at::Tensor blocks_to_heads(const at::Tensor& x, int64_t g, int64_t block) {
  const int64_t b = x.size(0), hkv = x.size(1), nb = x.size(2);
  if (x.dim() == 5) {
    return x.view({b, hkv, nb, g, block, x.size(4)}).permute({0, 1, 3, 2, 4, 5}).reshape({b, hkv * g, nb * block, x.size(4)});
  }
  return x.view({b, hkv, nb, g, block}).permute({0, 1, 3, 2, 4}).reshape({b, hkv * g, nb * block});
}

struct BlockedQueries {
  at::Tensor q;  // [B, Hkv, nb, g*block, D]
  int64_t g = 1;
};

BlockedQueries block_queries(const at::Tensor& q, const AttentionPlan& plan, int64_t hkv) {
  const int64_t b = q.size(0), hq = q.size(1), tq = q.size(2), d = q.size(3);
  const int64_t g = hq / hkv, nb = plan.num_blocks, block = plan.block;
  at::Tensor padded = q;
  if (nb * block > tq) padded = at::constant_pad_nd(q, {0, 0, 0, nb * block - tq});
  at::Tensor blocked = padded.view({b, hkv, g, nb, block, d}).permute({0, 1, 3, 2, 4, 5}).reshape({b, hkv, nb, g * block, d});
  return {blocked, g};
}

// A part whose keys are gathered per block: idx [B, nb, R], mask [B, nb, block, R].
PartialAttention block_part(const BlockedQueries& bq, const at::Tensor& k, const at::Tensor& v, const BlockPart& part,
                            const at::Tensor& mask, const AttentionPlan& plan, double scale) {
  const int64_t b = k.size(0), hkv = k.size(1);
  const auto long_opts = part.idx.options();
  at::Tensor rows = at::arange(b, long_opts).view({b, 1, 1, 1});
  at::Tensor heads = at::arange(hkv, long_opts).view({1, hkv, 1, 1});
  at::Tensor idx = part.idx.clamp_min(0).unsqueeze(1);                                // [B, 1, nb, R]
  at::Tensor keys = k.index({rows, heads, idx});                                      // [B, Hkv, nb, R, D]
  at::Tensor values = v.index({rows, heads, idx});
  const int64_t nb = plan.num_blocks, block = plan.block, r = part.idx.size(2);
  PartialAttention res = attend(bq.q, keys, values, mask.view({b, 1, nb, 1, block, r}),
                                {b, hkv, nb, bq.g, block, r}, scale);
  return {blocks_to_heads(res.out, bq.g, block), blocks_to_heads(res.lse, bq.g, block)};
}

// The top-level gists: one key list per row shared by all blocks.
PartialAttention shared_part(const BlockedQueries& bq, const at::Tensor& k, const at::Tensor& v, const SharedPart& part,
                             const at::Tensor& mask, const AttentionPlan& plan, double scale) {
  const int64_t b = k.size(0), hkv = k.size(1), d = k.size(3);
  const int64_t nb = plan.num_blocks, block = plan.block, gcount = part.idx.size(1);
  const auto long_opts = part.idx.options();
  at::Tensor rows = at::arange(b, long_opts).view({b, 1, 1});
  at::Tensor heads = at::arange(hkv, long_opts).view({1, hkv, 1});
  at::Tensor idx = part.idx.clamp_min(0).unsqueeze(1);                                // [B, 1, G]
  at::Tensor keys = k.index({rows, heads, idx});                                      // [B, Hkv, G, D]
  at::Tensor values = v.index({rows, heads, idx});
  at::Tensor q = bq.q.reshape({b, hkv, nb * bq.g * block, d});
  PartialAttention res = attend(q, keys, values, mask.view({b, 1, nb, 1, block, gcount}),
                                {b, hkv, nb, bq.g, block, gcount}, scale);
  return {blocks_to_heads(res.out.view({b, hkv, nb, bq.g * block, d}), bq.g, block),
          blocks_to_heads(res.lse.view({b, hkv, nb, bq.g * block}), bq.g, block)};
}

// The selective queries over their unfolded chunks and chosen gists, scattered into the [B, Hq, Tq_padded] grid.
PartialAttention selected_part(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionPlan& plan,
                               const SelectionOptions& options, double scale) {
  const SelectionPlan& sel = plan.selection;
  const int64_t b = k.size(0), hkv = k.size(1), d = k.size(3), hq = q.size(1), ns = sel.count;
  const int64_t g = hq / hkv, tqp = plan.padded_queries();
  at::Tensor q_sel = q.index({sel.row, Slice(), sel.pos - plan.q_begin});            // [Ns, Hq, D]
  ChunkSelection chosen = select_chunks(q_sel.detach(), k.detach(), plan, options);
  const at::Tensor& key_pos = chosen.key_pos;                                         // [Ns, Hkv, R]
  const int64_t r = key_pos.size(2);

  // Exclude what the other parts already cover for these queries (am, and visible gists if kept).
  at::Tensor rows = sel.row.view({ns, 1, 1});
  TokenMeta km{plan.meta.fields.index({rows, key_pos.clamp_min(0)})};                 // [Ns, Hkv, R, F]
  TokenMeta qm{plan.meta.fields.index({sel.row, sel.pos}).view({ns, 1, 1, -1})};      // [Ns, 1, 1, F]
  at::Tensor covered = gist_mask_allowed(qm, km, plan.levels, plan.prev_chunks);
  if (!options.keep_unselected_gists) covered = covered.logical_and(km.field(TokenMeta::kLevel) < 0);
  at::Tensor mask = (key_pos >= 0).logical_and(covered.logical_not());                 // [Ns, Hkv, R]

  at::Tensor heads = at::arange(hkv, key_pos.options()).view({1, hkv, 1});
  at::Tensor keys = k.index({rows, heads, key_pos.clamp_min(0)});                     // [Ns, Hkv, R, D]
  at::Tensor values = v.index({rows, heads, key_pos.clamp_min(0)});
  PartialAttention res = attend(q_sel.view({ns, hkv, g, d}), keys, values, mask.view({ns, hkv, 1, r}),
                                {ns, hkv, g, r}, scale);                               // [Ns, Hkv, g, D], [Ns, Hkv, g]

  at::Tensor out = at::zeros({b * tqp, hq, d}, res.out.options());
  at::Tensor lse = at::full({b * tqp, hq}, kNegInf, res.lse.options());
  out = out.index_put({sel.slot}, res.out.reshape({ns, hq, d}));
  lse = lse.index_put({sel.slot}, res.lse.reshape({ns, hq}));
  return {out.view({b, tqp, hq, d}).permute({0, 2, 1, 3}), lse.view({b, tqp, hq}).permute({0, 2, 1})};
}

}  // namespace

PartialAttention merge_partials(const std::vector<PartialAttention>& parts) {
  GSA_CHECK(!parts.empty(), "merge_partials needs at least one part");
  if (parts.size() == 1) return parts[0];
  std::vector<at::Tensor> outs, lses;
  for (const auto& p : parts) {
    outs.push_back(p.out);
    lses.push_back(p.lse);
  }
  at::Tensor lse = at::stack(lses);                                                   // [P, ...]
  at::Tensor out = at::stack(outs);                                                   // [P, ..., D]
  at::Tensor m = std::get<0>(lse.max(0)).detach();
  m = at::where(at::isfinite(m), m, at::zeros_like(m));
  at::Tensor w = (lse - m).exp();                                                     // empty parts -> 0
  at::Tensor denom = w.sum(0);
  at::Tensor nonempty = denom > 0;
  at::Tensor safe_denom = at::where(nonempty, denom, at::ones_like(denom));  // see attend(): no tiny divisors
  at::Tensor merged = (w.unsqueeze(-1) * out).sum(0) / safe_denom.unsqueeze(-1);
  at::Tensor merged_lse = at::where(nonempty, m + safe_denom.log(), at::full_like(denom, kNegInf));
  return {merged, merged_lse};
}

at::Tensor gsa_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionPlan& plan,
                         bool selective, const SelectionOptions& selection, double scale) {
  GSA_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "gsa_attention wants [B, H, T, D] tensors");
  GSA_CHECK(q.size(0) == plan.batch && k.size(0) == plan.batch, "batch ", q.size(0), " / ", k.size(0),
            " does not match the plan's ", plan.batch);
  GSA_CHECK(q.size(2) == plan.num_queries, "q has ", q.size(2), " positions, the plan ", plan.num_queries);
  GSA_CHECK(k.size(2) == plan.num_keys && v.size(2) == plan.num_keys, "k/v have ", k.size(2), " positions, the plan ",
            plan.num_keys);
  GSA_CHECK(q.size(1) % k.size(1) == 0, "query heads ", q.size(1), " not a multiple of kv heads ", k.size(1));
  const bool select = selective && plan.selection.count > 0;
  auto pick = [&](const at::Tensor& normal, const at::Tensor& sel_mask) { return selective ? sel_mask : normal; };

  BlockedQueries bq = block_queries(q, plan, k.size(1));
  std::vector<PartialAttention> parts;
  parts.push_back(block_part(bq, k, v, plan.band, pick(plan.band.mask, plan.band.mask_selective), plan, scale));
  if (plan.sink.defined()) {
    parts.push_back(block_part(bq, k, v, plan.sink, plan.sink.mask, plan, scale));
  }
  if (plan.lower_gists.defined()) {
    parts.push_back(block_part(bq, k, v, plan.lower_gists,
                               pick(plan.lower_gists.mask, plan.lower_gists.mask_selective), plan, scale));
  }
  parts.push_back(shared_part(bq, k, v, plan.top_gists, pick(plan.top_gists.mask, plan.top_gists.mask_selective),
                              plan, scale));
  if (select) parts.push_back(selected_part(q, k, v, plan, selection, scale));

  PartialAttention merged = merge_partials(parts);
  return merged.out.narrow(2, 0, plan.num_queries).to(q.scalar_type());
}

}  // namespace gsa
