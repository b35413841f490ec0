// Sequence-parallel GSA attention (DESIGN.md section 5, "Per layer, forward"): each rank of the sp group holds
// the queries, keys and values of its shard; per layer it
//   1. all-gathers the replicated keys (the gists of every level, which form the global gist tree, and the sink
//      tokens of every document) over the sp group,
//   2. receives the halo (the band_width - 1 positions before its shard: previous chunks) from the rank(s) before,
//   3. runs the part-wise GSA attention of its queries over [replicated | halo | own] keys (attention.h KeyView),
//   4. in selective layers routes the selective queries' unfolded chunks to their owners (unfold_routing.h),
//   5. merges the partials in fp32.
// Backward mirrors it through the autograd collectives: gathered gist K/V gradients are reduce-scattered to their
// owners, halo gradients return to the senders, routed output gradients go back to the owners.
//
// Contract: with every rank of the sp group calling the model forward on its shard (same rows, same options),
// the outputs equal single-rank gsa_attention on the whole rows up to float rounding, for any shard cuts.
// SpForwardPlan is built once per forward (host metadata, one small collective) and reused by every layer. A group
// of one (sp 1) attends with gsa_attention over its plan directly (unless keys or traffic are being captured).
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

#include "gsa/config/options.h"
#include "gsa/parallel/autograd_collectives.h"
#include "gsa/parallel/communicator.h"
#include "gsa/parallel/sequence_shard.h"
#include "gsa/parallel/unfold_routing.h"
#include "gsa/runtime/attention_plan.h"
#include "gsa/runtime/llama_model.h"

namespace gsa {

// What each rank exchanges per layer, from the layouts alone (no attention plan): the replicated keys (gists of
// every level and sink tokens, in (row, position) order per owner rank) and the halo.
struct SpExchange {
  std::vector<int64_t> replicated_counts;  // [sp] rows each rank contributes
  at::Tensor own_row, own_position;        // [n_own] each: batch row and local position of the keys it sends
  at::Tensor replicated_target;            // [n_all] flat index into [B * replicated_width] of the gathered rows
  int64_t replicated_width = 0;            // most replicated keys in one row
  int64_t halo_begin = 0;                  // the halo is positions [halo_begin, shard begin)
  RowExchange halo;                        // position-major rows of [T_local, B, ...]
  at::Tensor key_slot;                     // [B, T] column of each position in [replicated | halo | own]; -1 none
  at::Tensor replicated_slot;              // [B, T] column of each replicated position in [replicated]; -1 none
};

// The rows this rank contributes to the gist-tree all-gather, picked from x [B, Hkv, T_local, X] (no copy of
// the rest): -> [n_own, Hkv, X].
at::Tensor own_replicated_rows(const SpExchange& exchange, const at::Tensor& x);

// halo_width: positions before the shard that its queries' local windows reach (band_width - 1). Collective over
// sp (every rank's halo extent).
SpExchange make_sp_exchange(const std::vector<GistLayout>& rows, const SequenceShards& shards, int64_t halo_width,
                            Communicator& sp, at::Device device);

struct SpForwardPlan {
  SequenceShards shards;
  int64_t rank = 0;
  AttentionPlan plan;                    // the global rows, queries = this rank's shard
  SpExchange exchange;
  bool any_selective = false;            // some rank of the group has selective queries

  int64_t local_begin() const { return shards.shard_begin(rank); }
  int64_t local_size() const { return shards.shard_size(rank); }
  int64_t halo_size() const { return local_begin() - exchange.halo_begin; }
};

// rows: the batch's layouts (identical on every rank of the group). Collective over sp (halo extents, selective
// flag): every rank of the group calls it.
SpForwardPlan make_sp_forward_plan(const std::vector<GistLayout>& rows, const SequenceShards& shards,
                                   const AttentionOptions& options, Communicator& sp, at::Device device);

// Bytes one layer moved from this rank, per collective (gsa bench comm).
struct SpLayerTraffic {
  int64_t replicated_bytes = 0;  // this rank's share of the gist-tree all-gather
  int64_t halo_bytes = 0;        // halo rows sent
  RoutingTraffic routing;
};

// The keys of one layer as the attention saw them (for distributed decode after a prefill).
struct SpLayerKeys {
  at::Tensor k_own, v_own;       // [B, Hkv, T_local, D]
  at::Tensor k_replicated;       // [B, Hkv, replicated_width, D]
};

class SequenceParallelAttention : public LayerAttention {
 public:
  SequenceParallelAttention(const SpForwardPlan& plan, const SelectionOptions& selection, Communicator& sp)
      : plan_(plan), selection_(selection), sp_(sp) {}

  at::Tensor attend(int64_t layer, bool layer_selects, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                    double scale) override;

  // When set, every layer's keys are kept here (indexed by layer).
  void capture_keys(std::vector<SpLayerKeys>* sink) { captured_ = sink; }
  // When set, every layer adds what it sent.
  void count_traffic(std::vector<SpLayerTraffic>* traffic) { traffic_ = traffic; }

 private:
  const SpForwardPlan& plan_;
  const SelectionOptions& selection_;
  Communicator& sp_;
  std::vector<SpLayerKeys>* captured_ = nullptr;
  std::vector<SpLayerTraffic>* traffic_ = nullptr;
};

}  // namespace gsa
