// The attention plan: everything about one batch of layouts that every layer's GSA attention reuses (the
// "plan" half of STYLE.md practice 5). Built once per forward (or decode step) on the host, moved to the device.
//
// Queries are the plan positions [q_begin, q_begin + num_queries) of every row (training and prefill: all of
// them; decode: the last one), cut into blocks of `block` consecutive positions. Every allowed (query, key)
// pair of the mask predicate falls into exactly one of these disjoint parts:
//   band        keys within band_width positions of the query (k > q - band_width): the local window and the
//               suffix, gathered per block as one contiguous range                         [B, nb, block+W-1]
//   sink        the first `sink` tokens of each document that intersects the block, older than the band
//   lower_gists gists of levels < L-1 older than the band, per block the contiguous index range of each level
//               that the block's sections can see (about (N+1) * fanout per level)
//   top_gists   the top-level gists older than the band, one compacted key list shared by all blocks
// band_width W is the widest local window (own chunk + N previous, through the query) of any raw or level-0
// query, so no raw key outside the band is ever allowed. Memory is O(T * (W + block + visible gists)), never T^2.
//
// With AttentionBackend::kKernels the four parts above are not built (band.defined() is false): the kernels
// walk the tile plan instead (tile_plan.h), which `tiles` builds on first use for a GQA group size. When the
// parts of all queries would pass a memory budget (AttentionOptions::reference_chunk_queries), they are built
// per run of queries at attention time instead (reference_chunk).
//
// Selective queries (suffix flag) use the *_selective masks in selective layers: the band keeps only non-gist
// keys (the "am" set: sink, previous chunk, suffix) and the gist parts drop out, unless keep_unselected_gists;
// the selection tables (selection_plan.h) let select_chunks() pick and unfold chunks for them.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include <ATen/ATen.h>

#include "gsa/config/options.h"
#include "gsa/runtime/gist_layout.h"
#include "gsa/runtime/mask_predicate.h"
#include "gsa/runtime/selection_plan.h"
#include "gsa/runtime/tile_plan.h"

namespace gsa {

// A part whose keys are gathered per query block.
struct BlockPart {
  at::Tensor idx;             // [B, nb, R] key positions; -1 = padding
  at::Tensor mask;            // [B, nb, block, R] bool: allowed and in this part
  at::Tensor mask_selective;  // [B, nb, block, R] bool: the same for layers where suffix queries select
  bool defined() const { return idx.defined(); }
};

// A part whose keys are one list shared by every block of a row.
struct SharedPart {
  at::Tensor idx;             // [B, G] key positions; -1 = padding
  at::Tensor mask;            // [B, nb, block, G] bool
  at::Tensor mask_selective;  // [B, nb, block, G] bool
  bool defined() const { return idx.defined(); }
};

// The kernels' tile plans of one attention plan, one per GQA group size, built on first use from copies of the
// rows (the caller's layouts need not outlive the plan); their backward lists only when gradients are recorded
// (a later call that records them rebuilds the plan). Not thread-safe: one plan serves one forward.
class TilePlanCache {
 public:
  // deterministic: tile plans with one backward work item per key tile (AttentionOptions::deterministic).
  TilePlanCache(std::shared_ptr<const std::vector<GistLayout>> rows, int64_t q_begin, int64_t num_queries,
                at::Device device, bool deterministic);
  std::shared_ptr<const TilePlan> get(int64_t group);

 private:
  std::shared_ptr<const std::vector<GistLayout>> rows_;
  int64_t q_begin_, num_queries_;
  at::Device device_;
  bool deterministic_;
  std::map<int64_t, std::shared_ptr<const TilePlan>> plans_;
};

struct AttentionPlan {
  int64_t batch = 0;
  int64_t num_keys = 0;        // T: padded row length
  int64_t q_begin = 0;
  int64_t num_queries = 0;     // Tq
  int64_t block = 0;           // queries per block
  int64_t num_blocks = 0;      // nb; nb * block >= Tq (the tail block is padded)
  int64_t band_width = 0;      // W
  int64_t levels = 1;
  int64_t prev_chunks = 1;
  bool keep_unselected_gists = false;
  GistOptions gist;            // the rows' gist options (all rows share them)

  at::Tensor tokens;           // [B, Tq] token ids at the query positions (padding 0): the model's input
  at::Tensor rope_pos;         // [B, Tq] their RoPE positions (padding 0)
  TokenMeta meta;              // [B, T, F] all keys
  TokenMeta query_meta;        // [B, nb, block, F] (padding queries have doc -1)
  BlockPart band;
  BlockPart sink;
  BlockPart lower_gists;       // undefined for one level
  SharedPart top_gists;
  SelectionPlan selection;
  AttentionOptions options;              // what the plan was made with
  AttentionBackend backend = AttentionBackend::kAuto;
  std::shared_ptr<TilePlanCache> tiles;  // null where the kernels cannot run (REFERENCE, or AUTO on the CPU)
  // > 0: the reference parts (band .. top_gists) are not built here: gsa_attention builds them per run of this
  // many queries from `rows` (copies of the layouts) and concatenates the results, so their memory is bounded.
  int64_t reference_chunk = 0;
  std::shared_ptr<const std::vector<GistLayout>> rows;  // set when tiles or reference_chunk need it

  int64_t padded_queries() const { return num_blocks * block; }
};

// rows: the layouts of the batch (same levels); keys are positions [0, max row size); queries are
// [q_begin, q_begin + num_queries) (num_queries < 0: through the end of the longest row).
AttentionPlan make_attention_plan(const std::vector<const GistLayout*>& rows, int64_t q_begin,
                                  int64_t num_queries, const AttentionOptions& options, at::Device device);

}  // namespace gsa
