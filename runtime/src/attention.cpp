#include "gsa/runtime/attention.h"

#include <limits>

#include <ATen/record_function.h>

#include "gsa/runtime/error.h"
#include "gsa/runtime/kernel_choice.h"
#include "gsa/runtime/key_gather.h"
#include "gsa/runtime/mask_predicate.h"
#include "gsa/runtime/selected_attention.h"
#include "gsa/runtime/selection.h"
#include "gsa/runtime/sparse_attention.h"

namespace gsa {
namespace {

using at::indexing::Slice;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

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

// Maps plan key positions idx (-1 = padding) to the view's columns: -> (column clamped to >= 0, held).
struct ViewIndex {
  at::Tensor column;  // idx's shape
  at::Tensor held;    // idx's shape, bool: a real key that the view holds
};

ViewIndex view_index(const KeyView& keys, const at::Tensor& rows, const at::Tensor& idx) {
  if (!keys.slot.defined()) return {idx.clamp_min(0), idx >= 0};
  at::Tensor column = keys.slot.index({rows, idx.clamp_min(0)});
  return {column.clamp_min(0), (idx >= 0).logical_and(column >= 0)};
}

// A part whose keys are gathered per block: idx [B, nb, R], mask [B, nb, block, R].
PartialAttention block_part(const BlockedQueries& bq, const KeyView& kv, const BlockPart& part, at::Tensor mask,
                            const AttentionPlan& plan, double scale) {
  const int64_t b = kv.k.size(0), hkv = kv.k.size(1);
  const auto long_opts = part.idx.options();
  ViewIndex vi = view_index(kv, at::arange(b, long_opts).view({b, 1, 1}), part.idx);  // [B, nb, R]
  if (kv.slot.defined()) mask = mask.logical_and(vi.held.unsqueeze(2));
  at::Tensor rows = at::arange(b, long_opts).view({b, 1, 1, 1});
  at::Tensor heads = at::arange(hkv, long_opts).view({1, hkv, 1, 1});
  at::Tensor idx = vi.column.unsqueeze(1);                                            // [B, 1, nb, R]
  at::Tensor keys = gather_key_rows(kv.k, rows, heads, idx);                          // [B, Hkv, nb, R, D]
  at::Tensor values = gather_key_rows(kv.v, rows, heads, idx);
  const int64_t nb = plan.num_blocks, block = plan.block, r = part.idx.size(2);
  PartialAttention res = masked_attention(bq.q, keys, values, mask.view({b, 1, nb, 1, block, r}),
                                          {b, hkv, nb, bq.g, block, r}, scale);
  return {blocks_to_heads(res.out, bq.g, block), blocks_to_heads(res.lse, bq.g, block)};
}

// The top-level gists: one key list per row shared by all blocks.
PartialAttention shared_part(const BlockedQueries& bq, const KeyView& kv, const SharedPart& part, at::Tensor mask,
                             const AttentionPlan& plan, double scale) {
  const int64_t b = kv.k.size(0), hkv = kv.k.size(1), d = kv.k.size(3);
  const int64_t nb = plan.num_blocks, block = plan.block, gcount = part.idx.size(1);
  const auto long_opts = part.idx.options();
  ViewIndex vi = view_index(kv, at::arange(b, long_opts).view({b, 1}), part.idx);     // [B, G]
  if (kv.slot.defined()) mask = mask.logical_and(vi.held.view({b, 1, 1, gcount}));
  at::Tensor rows = at::arange(b, long_opts).view({b, 1, 1});
  at::Tensor heads = at::arange(hkv, long_opts).view({1, hkv, 1});
  at::Tensor idx = vi.column.unsqueeze(1);                                            // [B, 1, G]
  at::Tensor keys = gather_key_rows(kv.k, rows, heads, idx);                          // [B, Hkv, G, D]
  at::Tensor values = gather_key_rows(kv.v, rows, heads, idx);
  at::Tensor q = bq.q.reshape({b, hkv, nb * bq.g * block, d});
  PartialAttention res = masked_attention(q, keys, values, mask.view({b, 1, nb, 1, block, gcount}),
                                          {b, hkv, nb, bq.g, block, gcount}, scale);
  return {blocks_to_heads(res.out.view({b, hkv, nb, bq.g * block, d}), bq.g, block),
          blocks_to_heads(res.lse.view({b, hkv, nb, bq.g * block}), bq.g, block)};
}

// The selective queries over their unfolded chunks and chosen gists that the view holds: [Ns, Hq, D] and
// [Ns, Hq] in fp32; the selected keys it does not hold go to `remote` when given. on_kernels: the attention over
// the selected keys runs on the selected-attention kernels where they take the inputs (selected_attention.h),
// else on gathered rows with LibTorch ops.
PartialAttention selected_rows(const at::Tensor& q, const KeyView& kv, const KeyView& selection_keys,
                               const AttentionPlan& plan, const SelectionOptions& options, double scale,
                               RemoteSelection* remote, bool on_kernels) {
  RECORD_FUNCTION("gsa::selected_rows", std::vector<c10::IValue>());
  const SelectionPlan& sel = plan.selection;
  const int64_t hkv = kv.k.size(1), d = kv.k.size(3), hq = q.size(1), ns = sel.count;
  const int64_t g = hq / hkv;
  at::Tensor q_sel = q.index({sel.row, Slice(), sel.pos - plan.q_begin});            // [Ns, Hq, D]
  ChunkSelection chosen = select_chunks(q_sel.detach(), selection_keys.k.detach(), plan, options, selection_keys.slot);
  at::Tensor key_pos = chosen.key_pos;                                                // [Ns, Hkv, R]
  const int64_t r = key_pos.size(2);

  // Exclude what the other parts already cover for these queries (am, and visible gists if kept).
  at::Tensor rows = sel.row.view({ns, 1, 1});
  TokenMeta km{plan.meta.fields.index({rows, key_pos.clamp_min(0)})};                 // [Ns, Hkv, R, F]
  TokenMeta qm{plan.meta.fields.index({sel.row, sel.pos}).view({ns, 1, 1, -1})};      // [Ns, 1, 1, F]
  at::Tensor covered = gist_mask_allowed(qm, km, plan.levels, plan.prev_chunks);
  if (!options.keep_unselected_gists) covered = covered.logical_and(km.field(TokenMeta::kLevel) < 0);
  key_pos = key_pos.masked_fill(covered, -1);
  ViewIndex vi = view_index(kv, rows, key_pos);                                       // [Ns, Hkv, R]
  if (remote != nullptr) {
    remote->q = q_sel;
    remote->key_pos = key_pos.masked_fill(vi.held, -1);
  }
  if (on_kernels && selected_attention_unsupported(q_sel, kv.k, kv.v).empty()) {
    return selected_attention(q_sel, kv.k, kv.v, sel.row, vi.column.masked_fill(vi.held.logical_not(), -1), scale);
  }

  at::Tensor heads = at::arange(hkv, key_pos.options()).view({1, hkv, 1});
  at::Tensor keys = gather_key_rows(kv.k, rows, heads, vi.column);                    // [Ns, Hkv, R, D]
  at::Tensor values = gather_key_rows(kv.v, rows, heads, vi.column);
  PartialAttention res = masked_attention(q_sel.view({ns, hkv, g, d}), keys, values, vi.held.view({ns, hkv, 1, r}),
                                          {ns, hkv, g, r}, scale);                    // [Ns, Hkv, g, D], [Ns, Hkv, g]
  return {res.out.reshape({ns, hq, d}), res.lse.reshape({ns, hq})};
}

// The kernels' result on the plan's padded query grid in fp32, to merge with the selected part.
PartialAttention kernel_part_on_grid(const SparseAttentionOutput& s, const AttentionPlan& plan) {
  const int64_t pad = plan.padded_queries() - plan.num_queries;
  return {at::constant_pad_nd(s.out.to(at::kFloat), {0, 0, 0, pad}), at::constant_pad_nd(s.lse, {0, pad}, kNegInf)};
}

// The kernels run when the plan has tile plans and either they are forced or the inputs are CUDA tensors they
// support; forced with unsupported inputs is an error naming why.
bool use_kernels(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionPlan& plan) {
  if (!plan.tiles) return false;
  return use_kernel_backend(plan.backend, q.is_cuda(), sparse_attention_unsupported(q, k, v),
                            str_cat("run q ", q.sizes(), " ", q.scalar_type(), " on ", q.device()));
}

// The reference parts built and run per run of plan.reference_chunk queries (attention_plan.h), the results
// concatenated on the plan's query grid; the selected keys not held here (remote) are put in the plan's order of
// selective queries (row-major, then position), which sorting the runs' (row, position) keys restores.
PartialAttention chunked_reference_attention(const at::Tensor& q, const KeyView& keys, const AttentionPlan& plan,
                                             bool selective, const SelectionOptions& selection, double scale,
                                             const KeyView* selection_keys, RemoteSelection* remote) {
  RECORD_FUNCTION("gsa::chunked_reference_attention", std::vector<c10::IValue>());
  const int64_t q_end = plan.q_begin + plan.num_queries;
  AttentionOptions options = plan.options;
  options.backend = AttentionBackend::kReference;
  std::vector<at::Tensor> outs, lses, remote_q, remote_pos, remote_order;
  int64_t widest = 1;
  for (int64_t first = plan.q_begin; first < q_end; first += plan.reference_chunk) {
    const int64_t n = std::min(plan.reference_chunk, q_end - first);
    options.reference_chunk_queries = n;
    const AttentionPlan run = make_attention_plan(row_pointers(*plan.rows), first, n, options, q.device());
    RemoteSelection piece;
    const PartialAttention part = gsa_attention_partial(q.narrow(2, first - plan.q_begin, n), keys, run, selective,
                                                        selection, scale, selection_keys,
                                                        remote != nullptr ? &piece : nullptr);
    outs.push_back(part.out.narrow(2, 0, n));
    lses.push_back(part.lse.narrow(2, 0, n));
    if (piece.q.defined() && run.selection.count > 0) {
      remote_q.push_back(piece.q);
      remote_pos.push_back(piece.key_pos);
      remote_order.push_back(run.selection.row * plan.num_keys + run.selection.pos);
      widest = std::max(widest, piece.key_pos.size(2));
    }
  }
  const int64_t pad = plan.padded_queries() - plan.num_queries;
  PartialAttention merged{at::constant_pad_nd(at::cat(outs, 2), {0, 0, 0, pad}),
                          at::constant_pad_nd(at::cat(lses, 2), {0, pad}, kNegInf)};
  if (!remote_q.empty()) {
    for (at::Tensor& pos : remote_pos) pos = at::constant_pad_nd(pos, {0, widest - pos.size(2)}, -1);
    const at::Tensor order = std::get<1>(at::cat(remote_order).sort());
    remote->q = at::cat(remote_q).index_select(0, order);
    remote->key_pos = at::cat(remote_pos).index_select(0, order);
  }
  return merged;
}

}  // namespace

PartialAttention merge_partials(const std::vector<PartialAttention>& parts) {
  GSA_CHECK(!parts.empty(), "merge_partials needs at least one part");
  if (parts.size() == 1) return parts[0];
  RECORD_FUNCTION("gsa::merge_partials", std::vector<c10::IValue>());
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
  at::Tensor safe_denom = at::where(nonempty, denom, at::ones_like(denom));  // see masked_attention(): no tiny divisors
  at::Tensor merged = (w.unsqueeze(-1) * out).sum(0) / safe_denom.unsqueeze(-1);
  at::Tensor merged_lse = at::where(nonempty, m + safe_denom.log(), at::full_like(denom, kNegInf));
  return {merged, merged_lse};
}

PartialAttention masked_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
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

PartialAttention merge_selected_rows(const PartialAttention& grid, const PartialAttention& selected,
                                     const AttentionPlan& plan) {
  RECORD_FUNCTION("gsa::merge_selected_rows", std::vector<c10::IValue>());
  const SelectionPlan& sel = plan.selection;
  const int64_t ns = sel.count, hq = grid.out.size(1);
  GSA_CHECK(selected.out.dim() == 3 && selected.out.size(0) == ns && selected.out.size(1) == hq,
            "merge_selected_rows: selected rows ", selected.out.sizes(), " are not [", ns, ", ", hq, ", D]");
  // (row, head, query index) of every selective query's heads: [Ns, Hq] after broadcasting.
  const c10::List<std::optional<at::Tensor>> at_rows{sel.row.view({ns, 1}),
                                                      at::arange(hq, sel.row.options()).view({1, hq}),
                                                      (sel.pos - plan.q_begin).view({ns, 1})};
  const PartialAttention here{at::index(grid.out, at_rows).to(at::kFloat), at::index(grid.lse, at_rows)};
  const PartialAttention merged = merge_partials({here, selected});                  // [Ns, Hq, D], [Ns, Hq]
  return {at::index_put(grid.out, at_rows, merged.out.to(grid.out.scalar_type())),
          at::index_put(grid.lse, at_rows, merged.lse)};
}

PartialAttention selective_to_grid(const AttentionPlan& plan, const at::Tensor& out, const at::Tensor& lse) {
  RECORD_FUNCTION("gsa::selective_to_grid", std::vector<c10::IValue>());
  const SelectionPlan& sel = plan.selection;
  const int64_t b = plan.batch, tqp = plan.padded_queries(), hq = out.size(1), d = out.size(2);
  at::Tensor grid_out = at::zeros({b * tqp, hq, d}, out.options());
  at::Tensor grid_lse = at::full({b * tqp, hq}, kNegInf, lse.options());
  if (sel.count > 0) {
    grid_out = grid_out.index_put({sel.slot}, out);
    grid_lse = grid_lse.index_put({sel.slot}, lse);
  } else {
    // No selective query: still depend on out and lse (empty), so the autograd graph has the same shape on
    // every rank of a sequence-parallel group (autograd_collectives.h).
    grid_out = grid_out + out.sum() * 0;
    grid_lse = grid_lse + lse.sum() * 0;
  }
  return {grid_out.view({b, tqp, hq, d}).permute({0, 2, 1, 3}), grid_lse.view({b, tqp, hq}).permute({0, 2, 1})};
}

PartialAttention gsa_attention_partial(const at::Tensor& q, const KeyView& keys, const AttentionPlan& plan,
                                       bool selective, const SelectionOptions& selection, double scale,
                                       const KeyView* selection_keys, RemoteSelection* remote) {
  const at::Tensor& k = keys.k;
  const at::Tensor& v = keys.v;
  GSA_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "gsa_attention wants [B, H, T, D] tensors");
  GSA_CHECK(q.size(0) == plan.batch && k.size(0) == plan.batch, "batch ", q.size(0), " / ", k.size(0),
            " does not match the plan's ", plan.batch);
  GSA_CHECK(q.size(2) == plan.num_queries, "q has ", q.size(2), " positions, the plan ", plan.num_queries);
  GSA_CHECK(k.sizes() == v.sizes(), "k ", k.sizes(), " and v ", v.sizes(), " differ");
  if (keys.slot.defined()) {
    GSA_CHECK(keys.slot.dim() == 2 && keys.slot.size(0) == plan.batch && keys.slot.size(1) >= plan.num_keys,
              "key slot table ", keys.slot.sizes(), " does not cover the plan's [", plan.batch, ", ", plan.num_keys,
              "] positions");
  } else {
    GSA_CHECK(k.size(2) == plan.num_keys, "k/v have ", k.size(2), " positions, the plan ", plan.num_keys);
  }
  GSA_CHECK(q.size(1) % k.size(1) == 0, "query heads ", q.size(1), " not a multiple of kv heads ", k.size(1));
  const bool select = selective && plan.selection.count > 0;
  if (use_kernels(q, k, v, plan)) {
    const SparseAttentionOutput s = sparse_attention(q, k, v, plan.tiles->get(q.size(1) / k.size(1)), selective,
                                                     plan.keep_unselected_gists, scale, keys.slot);
    const PartialAttention grid = kernel_part_on_grid(s, plan);
    if (!select) return grid;
    return merge_selected_rows(grid, selected_rows(q, keys, selection_keys != nullptr ? *selection_keys : keys, plan,
                                                   selection, scale, remote, /*on_kernels=*/true),
                               plan);
  }
  if (!plan.band.defined() && plan.reference_chunk > 0) {
    return chunked_reference_attention(q, keys, plan, selective, selection, scale, selection_keys, remote);
  }
  GSA_CHECK(plan.band.defined(), "attention plan without reference masks (attention.backend = KERNELS) ",
            "but the kernels cannot run these inputs");
  RECORD_FUNCTION("gsa::reference_attention", std::vector<c10::IValue>());
  auto pick = [&](const at::Tensor& normal, const at::Tensor& sel_mask) { return selective ? sel_mask : normal; };

  BlockedQueries bq = block_queries(q, plan, k.size(1));
  std::vector<PartialAttention> parts;
  parts.push_back(block_part(bq, keys, plan.band, pick(plan.band.mask, plan.band.mask_selective), plan, scale));
  if (plan.sink.defined()) parts.push_back(block_part(bq, keys, plan.sink, plan.sink.mask, plan, scale));
  if (plan.lower_gists.defined()) {
    parts.push_back(block_part(bq, keys, plan.lower_gists,
                               pick(plan.lower_gists.mask, plan.lower_gists.mask_selective), plan, scale));
  }
  parts.push_back(shared_part(bq, keys, plan.top_gists, pick(plan.top_gists.mask, plan.top_gists.mask_selective),
                              plan, scale));
  if (select) {
    const PartialAttention rows = selected_rows(q, keys, selection_keys != nullptr ? *selection_keys : keys, plan,
                                                selection, scale, remote, /*on_kernels=*/false);
    parts.push_back(selective_to_grid(plan, rows.out, rows.lse));
  }
  return merge_partials(parts);
}

at::Tensor finish_attention(const PartialAttention& merged, const AttentionPlan& plan, at::ScalarType dtype) {
  return merged.out.narrow(2, 0, plan.num_queries).to(dtype);
}

at::Tensor gsa_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionPlan& plan,
                         bool selective, const SelectionOptions& selection, double scale) {
  // On the kernels the result stays in q's dtype on the unpadded grid: the kernels' output as it stands, the
  // selective queries' rows merged with their selected part.
  if (q.size(1) % k.size(1) == 0 && use_kernels(q, k, v, plan)) {
    const SparseAttentionOutput s = sparse_attention(q, k, v, plan.tiles->get(q.size(1) / k.size(1)), selective,
                                                     plan.keep_unselected_gists, scale);
    if (!selective || plan.selection.count == 0) return s.out;
    const KeyView keys{k, v, {}};
    return merge_selected_rows({s.out, s.lse},
                               selected_rows(q, keys, keys, plan, selection, scale, nullptr, /*on_kernels=*/true), plan)
        .out;
  }
  PartialAttention merged = gsa_attention_partial(q, KeyView{k, v, {}}, plan, selective, selection, scale);
  return finish_attention(merged, plan, q.scalar_type());
}

}  // namespace gsa
