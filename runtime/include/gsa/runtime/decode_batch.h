// Consecutive decode steps of a batch of Generators in one forward each (a server's continuous batch): the
// per-sequence decode plans stacked into one (DecodePlan::stack), the per-sequence caches read through pointer
// tables (DecodeCaches), one kernel launch per layer for all of them.
//
// Contract:
// - step(sequences, tokens): each sequence appends its token (Generator::prepare_step: the cache grows in blocks,
//   the sequence's own plan advances), then one forward computes every sequence's next logits; -> [V] logits per
//   sequence, equal to that sequence's own Generator::step().
// - While the batch is the same as the previous step's (the same Generators in the same order, no cache grown
//   since), the stacked plan advances in place (O(B) host work) instead of being stacked again (O(total prompt
//   rows) device copies), and on CUDA with attention.cuda_graphs the step is replayed as a captured CUDA graph
//   (decode_graph.h); any change of composition or cache restacks and recaptures. Generators are told apart by a
//   serial number, never by address (a new Generator may reuse a freed one's memory).
// - All sequences share one model and one attention config. Not thread-safe.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "gsa/runtime/decode_caches.h"
#include "gsa/runtime/decode_graph.h"
#include "gsa/runtime/decode_plan.h"
#include "gsa/runtime/generation.h"

namespace gsa {

class DecodeBatch {
 public:
  DecodeBatch();
  ~DecodeBatch();

  std::vector<at::Tensor> step(const std::vector<Generator*>& sequences, const std::vector<int64_t>& tokens);

  int64_t restacks() const { return restacks_; }          // steps that stacked the plans anew
  int64_t captures() const { return graph_.captures(); }  // CUDA graphs captured

 private:
  std::vector<std::pair<uint64_t, uint64_t>> key_;  // (serial, cache generation) per sequence of the last step
  std::unique_ptr<DecodePlan> plan_;
  std::unique_ptr<DecodeCaches> caches_;
  DecodeStepGraph graph_;
  int64_t restacks_ = 0;
};

}  // namespace gsa
