// Sequence sharding: the padded rows of a batch are cut into sp contiguous shards, one per rank of the sp group
// (DESIGN.md section 5). Every rank owns the same position range in every row of the batch.
//
// Contract:
// - SequenceShards::begin has sp + 1 entries, begin[0] = 0, begin[sp] = row length, strictly increasing (every
//   shard holds at least one position); rank r owns positions [begin[r], begin[r + 1]).
// - shard_at_sections cuts at top-level section boundaries (just after a top-level gist of the first row), the
//   boundary nearest each even split, so no top-level section (and no chunk) straddles two ranks; when the row
//   has too few sections it falls back to even splits. Exactness never depends on where the cuts are.
// - shards_from_boundaries takes explicit cuts (tests put them in awkward places) and validates them.
// - shard_by_work (the work-balanced placement) cuts at the same candidate boundaries as shard_at_sections,
//   but nearest the quantiles of the estimated work (position_work) instead of the even split of positions: a
//   causal gist row gives later positions more visible keys (the gist tree grows), so equal positions are
//   unequal work. With per_key = 0 the work is uniform and the cuts are shard_at_sections'
//   (placement_work_model gives per_key = 0 on CPUs, where the measured cost follows the tokens).
//   shard_by_measured_cost cuts by per-rank times measured at a previous cut instead (the FLOP weights overshoot
//   where attention time grows more slowly with the keys a query sees than the FLOPs do, as on the CPU).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "gsa/config/options.h"
#include "gsa/runtime/gist_layout.h"

namespace gsa {

struct SequenceShards {
  std::vector<int64_t> begin;  // [sp + 1]

  int64_t num_shards() const { return static_cast<int64_t>(begin.size()) - 1; }
  int64_t length() const { return begin.back(); }
  int64_t shard_begin(int64_t rank) const { return begin[rank]; }
  int64_t shard_size(int64_t rank) const { return begin[rank + 1] - begin[rank]; }
  int64_t owner(int64_t pos) const;                 // the rank owning position pos
  at::Tensor owners(const at::Tensor& pos) const;   // elementwise; -1 stays -1
  std::string describe() const;                     // "[0, 40) [40, 96) ..."
};

// Padded row length of a batch (the longest row).
int64_t padded_length(const std::vector<GistLayout>& rows);

SequenceShards shard_at_sections(const std::vector<GistLayout>& rows, int64_t sp);

// The cost of one position in units of one multiply-add per element: per_token for what every position pays
// (projections, MLP), per_key for each key its query sees (scores and the weighted sum over values).
struct WorkModel {
  double per_token = 1;
  double per_key = 0;
};
// A layer's FLOP weights: per_token = hidden * (2 Hq D + 2 Hkv D) + 3 hidden * intermediate, per_key = 2 Hq D.
WorkModel work_model_of(const ModelOptions& model);
// The weights the work placement cuts by on a backend: the FLOP weights with per_key scaled by what a visible
// key costs there relative to its FLOPs. CUDA: 1 (the block-sparse kernels' time follows the keys a query visits).
// CPU: 0, measured: on 16 dedicated cores (docs/PERFORMANCE.md, "Scaling experiments on a many-core host's
// CPUs") each rank's busy time followed its tokens (0.59 ms a token at the tiny model, within 10% across 1-8
// ranks) and not its keys (least-squares key slope <= 0), so on CPUs the work cut is the section cut.
WorkModel placement_work_model(const ModelOptions& model, at::DeviceType device);

// [T] the estimated work of each position of row: per_token + per_key * visible keys, the visible keys of a query
// being its document's sink, its local window and its gist frontier (at each level, the gists since the last
// gist of the level above; every top-level gist before it).
std::vector<double> position_work(const GistLayout& row, const WorkModel& work);

// Work per shard (summed over the rows): [sp].
std::vector<double> shard_work(const std::vector<GistLayout>& rows, const SequenceShards& shards,
                               const WorkModel& work);

SequenceShards shard_by_work(const std::vector<GistLayout>& rows, int64_t sp, const WorkModel& work);

// The measured placement: a unit ran at the cut `measured` and rank r was busy busy_ms[r]; charging each position
// of shard r busy_ms[r] / shard_size(r), cut where that cost reaches r / sp of the total, nearest a top-level
// section as shard_at_sections does. One rebalancing step from a measurement, with no cost model: it assumes a
// position costs what the positions of its measured shard cost on average. All times 0: shard_at_sections.
SequenceShards shard_by_measured_cost(const std::vector<GistLayout>& rows, int64_t sp, const SequenceShards& measured,
                                      const std::vector<double>& busy_ms);
SequenceShards shards_from_boundaries(std::vector<int64_t> begin, int64_t length);

}  // namespace gsa
