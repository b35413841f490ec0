#include "gsa/parallel/sp_attention.h"

#include <algorithm>
#include <optional>

#include "gsa/parallel/phase_timers.h"
#include "gsa/runtime/attention.h"
#include "gsa/runtime/error.h"

namespace gsa {
namespace {

// Host tables of the replicated keys: per row, the positions that every rank holds a copy of.
bool is_replicated(const GistLayout& row, int64_t pos) { return row.is_gist(pos) || row.sink[pos] != 0; }

at::Tensor to_device(const std::vector<int64_t>& values, std::vector<int64_t> shape, at::Device device) {
  return at::tensor(values, at::kLong).view(shape).to(device);
}

}  // namespace

SpExchange make_sp_exchange(const std::vector<GistLayout>& rows, const SequenceShards& shards, int64_t halo_width,
                            Communicator& sp, at::Device device) {
  GSA_CHECK(shards.num_shards() == sp.size(), "sequence shards ", shards.describe(), " are for ", shards.num_shards(),
            " ranks, the sp group has ", sp.size());
  const int64_t length = padded_length(rows);
  GSA_CHECK(shards.length() == length, "sequence shards cover ", shards.length(), " positions, the rows ", length);
  const int rank = sp.rank();
  const int64_t batch = static_cast<int64_t>(rows.size());
  const int64_t begin = shards.shard_begin(rank), size = shards.shard_size(rank), end = begin + size;
  SpExchange ex;

  // Halo: every rank's extent (one small all-gather), then who sends what to whom.
  ex.halo_begin = std::max<int64_t>(0, begin - halo_width);
  const std::vector<int64_t> halo_begins = sp.all_gather_ints({ex.halo_begin});
  for (int r = 0; r < sp.size(); ++r) {
    if (r > rank) {  // rank r wants [halo_begin_r, begin_r): send what of it this rank owns
      const int64_t lo = std::max(begin, halo_begins[r]), hi = std::min(end, shards.shard_begin(r));
      if (hi > lo) ex.halo.sends.push_back({r, lo - begin, hi - lo});
    } else if (r < rank) {
      const int64_t lo = std::max(ex.halo_begin, shards.shard_begin(r)), hi = std::min(begin, shards.shard_begin(r + 1));
      if (hi > lo) ex.halo.recvs.push_back({r, hi - lo});
    }
  }
  const int64_t halo = begin - ex.halo_begin;
  GSA_CHECK(ex.halo.received_rows() == halo, "halo of rank ", rank, " covers ", ex.halo.received_rows(), " of ", halo,
            " positions");

  // Replicated keys: gists and sinks of every row, numbered per row in position order.
  std::vector<std::vector<int64_t>> replicated(batch);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t pos = 0; pos < rows[b].size(); ++pos) {
      if (is_replicated(rows[b], pos)) replicated[b].push_back(pos);
    }
    ex.replicated_width = std::max<int64_t>(ex.replicated_width, replicated[b].size());
  }
  const int64_t width = ex.replicated_width;
  std::vector<int64_t> key_slot(batch * length, -1), replicated_slot(batch * length, -1);
  std::vector<int64_t> own_row, own_position, target;
  ex.replicated_counts.assign(sp.size(), 0);
  for (int r = 0; r < sp.size(); ++r) {
    for (int64_t b = 0; b < batch; ++b) {
      // Positions are ascending: the ones rank r owns are a contiguous run of the row's list.
      auto first = std::lower_bound(replicated[b].begin(), replicated[b].end(), shards.shard_begin(r));
      auto last = std::lower_bound(first, replicated[b].end(), shards.shard_begin(r + 1));
      for (auto it = first; it != last; ++it) {
        target.push_back(b * width + (it - replicated[b].begin()));
        if (r == rank) {
          own_row.push_back(b);
          own_position.push_back(*it - begin);
        }
      }
      ex.replicated_counts[r] += last - first;
    }
  }
  for (int64_t b = 0; b < batch; ++b) {
    int64_t* slot = key_slot.data() + b * length;
    for (size_t j = 0; j < replicated[b].size(); ++j) {
      slot[replicated[b][j]] = static_cast<int64_t>(j);
      replicated_slot[b * length + replicated[b][j]] = static_cast<int64_t>(j);
    }
    for (int64_t pos = ex.halo_begin; pos < begin; ++pos) slot[pos] = width + pos - ex.halo_begin;
    for (int64_t pos = begin; pos < end; ++pos) slot[pos] = width + halo + pos - begin;
  }
  ex.own_row = to_device(own_row, {static_cast<int64_t>(own_row.size())}, device);
  ex.own_position = to_device(own_position, {static_cast<int64_t>(own_position.size())}, device);
  ex.replicated_target = to_device(target, {static_cast<int64_t>(target.size())}, device);
  ex.key_slot = to_device(key_slot, {batch, length}, device);
  ex.replicated_slot = to_device(replicated_slot, {batch, length}, device);
  return ex;
}

at::Tensor own_replicated_rows(const SpExchange& exchange, const at::Tensor& x) {
  return x.permute({0, 2, 1, 3}).index({exchange.own_row, exchange.own_position});  // [n_own, Hkv, X]
}

SpForwardPlan make_sp_forward_plan(const std::vector<GistLayout>& rows, const SequenceShards& shards,
                                   const AttentionOptions& options, Communicator& sp, at::Device device) {
  SpForwardPlan p;
  p.shards = shards;
  p.rank = sp.rank();
  GSA_CHECK(shards.num_shards() == sp.size() && shards.length() == padded_length(rows), "sequence shards ",
            shards.describe(), " do not fit ", rows.size(), " rows of ", padded_length(rows), " positions over sp ",
            sp.size());
  p.plan = make_attention_plan(row_pointers(rows), p.local_begin(), p.local_size(), options, device);
  p.exchange = make_sp_exchange(rows, shards, p.plan.band_width - 1, sp, device);
  p.any_selective = sp.all_reduce_int(p.plan.selection.count, ReduceOp::kMax) > 0;
  return p;
}

at::Tensor SequenceParallelAttention::attend(int64_t layer, bool layer_selects, const at::Tensor& q,
                                             const at::Tensor& k, const at::Tensor& v, double scale) {
  const SpForwardPlan& p = plan_;
  const SpExchange& ex = p.exchange;
  const int64_t b = k.size(0), hkv = k.size(1), t_local = k.size(2), d = k.size(3);
  GSA_CHECK(t_local == p.local_size(), "sequence-parallel attention: ", t_local, " local positions, the shard has ",
            p.local_size());
  // A group of one holds every key: the plain attention over its plan (no exchange to make, and the kernels'
  // direct output where there is no selection).
  if (sp_.size() == 1 && captured_ == nullptr && traffic_ == nullptr) {
    ScopedPhase timed(Phase::kAttention);
    return gsa_attention(q, k, v, p.plan, layer_selects, selection_, scale);
  }
  at::Tensor kv = at::cat({k, v}, -1);                                                  // [B, Hkv, Tl, 2D]

  // 1. the replicated keys (global gist tree + sinks): own rows out, every rank's rows in.
  at::Tensor gathered;
  {
    ScopedPhase timed(Phase::kGistTree);
    gathered = all_gather_rows(own_replicated_rows(ex, kv), sp_, ex.replicated_counts);
  }
  at::Tensor replicated = at::zeros({b * ex.replicated_width, hkv, 2 * d}, kv.options())
                              .index_put({ex.replicated_target}, gathered)
                              .view({b, ex.replicated_width, hkv, 2 * d});
  // 2. the halo: the positions before the shard, position-major rows (only the sent rows are copied).
  at::Tensor by_pos = kv.permute({2, 0, 1, 3});                                         // [Tl, B, Hkv, 2D]
  at::Tensor halo;
  {
    ScopedPhase timed(Phase::kHalo);
    halo = exchange_rows(by_pos, sp_, ex.halo).permute({1, 0, 2, 3});                     // [B, H, Hkv, 2D]
  }
  // 3. the keys this rank attends to: [replicated | halo | own].
  at::Tensor keys = at::cat({replicated, halo, kv.permute({0, 2, 1, 3})}, 1).permute({0, 2, 1, 3});  // [B, Hkv, S, 2D]
  KeyView view{keys.narrow(-1, 0, d), keys.narrow(-1, d, d), ex.key_slot};

  const bool route = layer_selects && p.any_selective;
  RemoteSelection remote;
  std::optional<ScopedPhase> compute(std::in_place, Phase::kAttention);
  PartialAttention result = gsa_attention_partial(q, view, p.plan, layer_selects, selection_, scale, nullptr,
                                                  route ? &remote : nullptr);
  compute.reset();
  // 4. selected chunks held elsewhere: attended by their owners.
  RoutingTraffic routing;
  if (route) {
    ScopedPhase timed(Phase::kRouting);
    PartialAttention routed = route_unfolding(remote, q, p.plan, p.shards, k, v, sp_, scale, &routing);
    result = merge_partials({result, routed});
  }

  if (captured_ != nullptr) {
    if (static_cast<int64_t>(captured_->size()) <= layer) captured_->resize(layer + 1);
    (*captured_)[layer] = {k.detach(), v.detach(),
                           replicated.narrow(-1, 0, d).permute({0, 2, 1, 3}).detach().contiguous()};
  }
  if (traffic_ != nullptr) {
    if (static_cast<int64_t>(traffic_->size()) <= layer) traffic_->resize(layer + 1);
    SpLayerTraffic& t = (*traffic_)[layer];
    const int64_t row_bytes = hkv * 2 * d * kv.element_size();
    t.replicated_bytes += ex.own_row.numel() * row_bytes;
    for (const RowSend& s : ex.halo.sends) t.halo_bytes += s.count * b * row_bytes;
    t.routing.items_sent += routing.items_sent;
    t.routing.bytes_sent += routing.bytes_sent;
  }
  ScopedPhase finish(Phase::kAttention);
  return finish_attention(result, p.plan, q.scalar_type());
}

}  // namespace gsa
