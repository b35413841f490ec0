// Unfold routing: the selective queries' selected chunks that another rank owns are attended there
// (DESIGN.md section 5, forward step 5).
//
// Contract: route_unfolding sends each (selective query, KV head) that has remote keys to every owner of some of
// them (all-to-all: the group's query heads and the key positions), the owner attends over its own K/V at those
// positions and returns the partial output and log-sum-exp (all-to-all back). The owners' partials are merged in fp32 and
// placed on the plan's padded query grid, to be merged with the local parts (merge_partials).
// Autograd: gradients flow back through both all-to-alls to the querying rank's q and the owner's k and v.
// Every rank of the group must call it for the same layers (with no selective queries it sends nothing).
#pragma once

#include <vector>

#include <ATen/ATen.h>

#include "gsa/parallel/communicator.h"
#include "gsa/parallel/sequence_shard.h"
#include "gsa/runtime/attention.h"

namespace gsa {

// Bytes and rows the routing of one layer moved from this rank (for gsa bench comm).
struct RoutingTraffic {
  int64_t items_sent = 0;       // (query, KV head) items sent to owners
  int64_t bytes_sent = 0;       // queries + positions out, partials back
};

// remote: from gsa_attention_partial (q may be undefined when this rank has no selective queries; q_source is
// then used to derive an empty input that keeps the autograd graph identical on every rank).
// k_own, v_own: [B, Hkv, T_local, D] this rank's keys and values (positions shards.shard_begin(rank) ...).
PartialAttention route_unfolding(const RemoteSelection& remote, const at::Tensor& q_source,
                                  const AttentionPlan& plan, const SequenceShards& shards, const at::Tensor& k_own,
                                  const at::Tensor& v_own, Communicator& sp, double scale,
                                  RoutingTraffic* traffic = nullptr);

}  // namespace gsa
