#include "gsa/parallel/unfold_routing.h"

#include <algorithm>
#include <limits>
#include <tuple>

#include "gsa/parallel/autograd_collectives.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/key_gather.h"
#include "gsa/runtime/selected_attention.h"

namespace gsa {
namespace {

// pos [I, R] ascending positions with -1 holes -> runs of consecutive positions: (start, length) [I, runs] each,
// length 0 = padding.
std::pair<at::Tensor, at::Tensor> position_runs(const at::Tensor& pos) {
  const int64_t items = pos.size(0), width = pos.size(1);
  if (items == 0 || width == 0) return {at::zeros({items, 0}, pos.options()), at::zeros({items, 0}, pos.options())};
  at::Tensor valid = pos >= 0;
  at::Tensor prev = at::cat({at::full({items, 1}, -2, pos.options()), pos.narrow(1, 0, width - 1)}, 1);
  // A run starts at a valid entry whose predecessor is not the previous position; a hole before position 0
  // (-1 == 0 - 1) is no predecessor.
  at::Tensor is_start = valid.logical_and(prev.lt(0).logical_or(prev != pos - 1));
  at::Tensor run = at::cumsum(is_start.to(at::kLong), 1) - 1;                           // run id of each entry
  const int64_t runs = std::max<int64_t>(is_start.sum(1).max().item<int64_t>(), 1);
  at::Tensor slot = at::where(valid, run, at::full_like(run, runs));                     // invalid -> spare column
  at::Tensor starts = at::zeros({items, runs + 1}, pos.options())
                          .scatter_(1, at::where(is_start, run, at::full_like(run, runs)), pos);
  at::Tensor lengths = at::zeros({items, runs + 1}, pos.options()).scatter_add_(1, slot, valid.to(at::kLong));
  return {starts.narrow(1, 0, runs), lengths.narrow(1, 0, runs)};
}

// (start, length) [M, runs] -> positions [M, runs * longest run], -1 padding.
at::Tensor expand_runs(const at::Tensor& starts, const at::Tensor& lengths) {
  const int64_t items = starts.size(0), runs = starts.size(1);
  const int64_t longest = items * runs > 0 ? std::max<int64_t>(lengths.max().item<int64_t>(), 1) : 1;
  at::Tensor offsets = at::arange(longest, starts.options()).view({1, 1, longest});
  at::Tensor pos = starts.unsqueeze(-1) + offsets;
  return pos.masked_fill(offsets >= lengths.unsqueeze(-1), -1).view({items, runs * longest});
}

}  // namespace

PartialAttention route_unfolding(const RemoteSelection& remote, const at::Tensor& q_source, const AttentionPlan& plan,
                                 const SequenceShards& shards, const at::Tensor& k_own, const at::Tensor& v_own,
                                 Communicator& sp, double scale, RoutingTraffic* traffic) {
  const int me = sp.rank(), n = sp.size();
  const int64_t hkv = k_own.size(1), t_local = k_own.size(2), d = k_own.size(3);
  const int64_t hq = q_source.size(1), g = hq / hkv;
  const int64_t ns = plan.selection.count;
  const auto long_opts = at::TensorOptions().dtype(at::kLong).device(k_own.device());

  // Items = (selective query, KV head) pairs: their query heads [Ns*Hkv, g, D] and remote keys [Ns*Hkv, R].
  at::Tensor q_items, key_pos;
  if (ns > 0) {
    GSA_CHECK(remote.q.defined(), "route_unfolding: ", ns, " selective queries but no remote selection");
    q_items = remote.q.reshape({ns * hkv, g, d});
    key_pos = remote.key_pos.reshape({ns * hkv, -1});
  } else {
    q_items = q_source.reshape({-1}).narrow(0, 0, 0).view({0, g, d});  // keeps the autograd graph uniform
    key_pos = at::full({0, 0}, -1, long_opts);
  }
  at::Tensor owner = shards.owners(key_pos);                                           // [Ns*Hkv, R]
  at::Tensor item_rows = ns > 0 ? plan.selection.row.repeat_interleave(hkv) : at::zeros({0}, long_opts);

  // Per owner: the items with keys there, and their metadata rows (batch row, KV head, the positions there as
  // runs of consecutive positions: a chunk's raw tokens are one run, so this is ~c0 times smaller than a list).
  std::vector<at::Tensor> item_index(n), starts(n), lengths(n);
  std::vector<int64_t> send_counts(n, 0);
  int64_t max_runs = 0;
  for (int o = 0; o < n; ++o) {
    at::Tensor at_o = owner == o;
    at::Tensor idx = at_o.any(-1).nonzero().view({-1});
    GSA_CHECK(o != me || idx.numel() == 0, "route_unfolding: rank ", me, " routed keys it holds to itself");
    item_index[o] = idx;
    send_counts[o] = idx.numel();
    at::Tensor pos = key_pos.index_select(0, idx).masked_fill(at_o.index_select(0, idx).logical_not(), -1);
    std::tie(starts[o], lengths[o]) = position_runs(pos);
    max_runs = std::max<int64_t>(max_runs, starts[o].size(1));
  }
  max_runs = std::max<int64_t>(sp.all_reduce_int(max_runs, ReduceOp::kMax), 1);  // no zero-width attention
  std::vector<at::Tensor> meta_blocks(n);
  for (int o = 0; o < n; ++o) {
    const int64_t pad = max_runs - starts[o].size(1);
    meta_blocks[o] = at::cat({item_rows.index_select(0, item_index[o]).view({-1, 1}),
                              (item_index[o] % hkv).view({-1, 1}), at::constant_pad_nd(starts[o], {0, pad}, 0),
                              at::constant_pad_nd(lengths[o], {0, pad}, 0)}, 1).to(at::kInt);
  }
  const std::vector<int64_t> all_counts = sp.all_gather_ints(send_counts);
  std::vector<int64_t> recv_counts(n);
  for (int s = 0; s < n; ++s) recv_counts[s] = all_counts[s * n + me];
  int64_t received = 0;
  for (int64_t c : recv_counts) received += c;

  at::Tensor meta = at::cat(meta_blocks, 0).contiguous();                               // [M, 2 + 2 runs] int32
  at::Tensor meta_in = at::empty({received, 2 + 2 * max_runs}, meta.options());
  sp.all_to_all_v(meta, send_counts, meta_in, recv_counts);
  meta_in = meta_in.to(at::kLong);
  at::Tensor q_send = q_items.index_select(0, at::cat(item_index, 0));                   // [M, g, D]
  at::Tensor q_in = all_to_all_rows(q_send, sp, send_counts, recv_counts);               // [M_in, g, D]

  // Owner side: attend over the own keys at the requested positions.
  at::Tensor rows_in = meta_in.select(1, 0).view({received, 1});
  at::Tensor heads_in = meta_in.select(1, 1).view({received, 1});
  at::Tensor pos_in = expand_runs(meta_in.narrow(1, 2, max_runs), meta_in.narrow(1, 2 + max_runs, max_runs));
  const int64_t width = pos_in.size(1);                                                  // [M_in, R]
  at::Tensor column = pos_in - shards.shard_begin(me);
  at::Tensor valid = pos_in >= 0;
  GSA_CHECK(!(valid.logical_and(column.lt(0).logical_or(column.ge(t_local)))).any().item<bool>(),
            "route_unfolding: rank ", me, " was asked for keys outside its shard ", shards.describe());
  column = column.clamp(0, std::max<int64_t>(t_local - 1, 0));
  PartialAttention owned;                                                                // [M_in, g, D], [M_in, g]
  if (selected_attention_unsupported(q_in, k_own, v_own, /*kv_heads=*/1).empty()) {
    // The kernels (selected_attention.h): one KV head per item, its positions as a row list.
    owned = selected_attention(q_in, k_own, v_own, rows_in.view({-1}),
                               column.masked_fill(valid.logical_not(), -1).view({received, 1, width}), scale,
                               heads_in.view({-1}));
  } else {
    at::Tensor keys = gather_key_rows(k_own, rows_in, heads_in, column);                 // [M_in, R, D]
    at::Tensor values = gather_key_rows(v_own, rows_in, heads_in, column);
    owned = masked_attention(q_in, keys, values, valid.view({received, 1, width}), {received, g, width}, scale);
  }
  at::Tensor packed = at::cat({owned.out, owned.lse.unsqueeze(-1)}, -1);                 // [M_in, g, D + 1]
  at::Tensor back = all_to_all_rows(packed, sp, recv_counts, send_counts);               // [M, g, D + 1]

  // Querying side: one partial per owner over all items, merged, then placed on the query grid.
  const float neg_inf = -std::numeric_limits<float>::infinity();
  std::vector<PartialAttention> per_owner;
  int64_t offset = 0;
  for (int o = 0; o < n; ++o) {
    at::Tensor block = back.narrow(0, offset, send_counts[o]);
    offset += send_counts[o];
    at::Tensor out = at::zeros({ns * hkv, g, d}, back.options()).index_put({item_index[o]}, block.narrow(-1, 0, d));
    at::Tensor lse = at::full({ns * hkv, g}, neg_inf, back.options()).index_put({item_index[o]}, block.select(-1, d));
    per_owner.push_back({out, lse});
  }
  PartialAttention merged = merge_partials(per_owner);
  if (traffic != nullptr) {
    traffic->items_sent += q_send.size(0);
    traffic->bytes_sent += q_send.nbytes() + meta.nbytes() + packed.nbytes();
  }
  return selective_to_grid(plan, merged.out.reshape({ns, hq, d}), merged.lse.reshape({ns, hq}));
}

}  // namespace gsa
