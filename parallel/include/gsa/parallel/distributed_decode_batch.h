// Consecutive decode steps of a batch of DistributedGenerators in one forward each (a sharded server's continuous
// batch; DESIGN.md section 5, "Serving decode"): the sp group's DecodeBatch (decode_batch.h). Every rank of the
// sp group calls step() with the same sequences (in the same order) and the same tokens.
//
// Contract:
// - step(sequences, tokens): each sequence appends its token (DistributedGenerator::prepare_step: the tail
//   owner's cache grows in blocks, the sequence's own plan advances), then one forward computes every sequence's
//   next logits on every rank; -> [V] logits per sequence, equal to that sequence's single-device
//   Generator::step() up to float rounding. Every input is checked on every rank before any sequence moves, so
//   a bad batch throws the same gsa::Error on every rank and leaves the sequences as they were.
// - Per layer: the tail owner appends each sequence's new K/V; each rank attends every sequence's query over the
//   rows it holds (the stacked decode plan's rows, decode_plan.h, plus the chunks selected over each sequence's
//   replicated gist tree, mapped to this rank's cache columns; the generated range on the tail owner), then ONE
//   all-gather of the batch's partial outputs and log-sum-exps ([B, Hq, D + 1] per rank) and one fp32 merge
//   (merge_partials). No other collective runs in a step.
// - While the batch is the same as the previous step's (the same sequences in the same order, none prefilled or
//   stepped elsewhere since), the stacked plan advances in place (O(B) host work); any change restacks
//   (DecodePlan::stack, the trees and slot maps padded and stacked: O(total prompt rows + trees) device copies).
//   A cache that grows is followed without a restack (DecodeCaches tracks it). Sequences are told apart by a
//   serial number, never by address.
// - CUDA graphs: on a CUDA device whose decode step can be captured (decode_attention.h) over a communicator
//   that can be (NCCL; communicator.h), the step is replayed as a graph (decode_graph.h: warm-up, capture, then
//   replays), captured anew after a restack or a cache growth, then fenced (the communicator's deadline covers
//   the replayed all-gathers). Not while PhaseTimers is enabled (its scopes synchronise): timed breakdowns run
//   eagerly. One rank's sp group skips the all-gather and the merge (its partial is the whole attention).
// - All sequences share one model, one attention config and one communicator. Not thread-safe.
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "gsa/parallel/distributed_decode.h"
#include "gsa/runtime/decode_caches.h"
#include "gsa/runtime/decode_graph.h"
#include "gsa/runtime/decode_plan.h"

namespace gsa {

class DistributedDecodeBatch {
 public:
  DistributedDecodeBatch();
  ~DistributedDecodeBatch();

  std::vector<at::Tensor> step(const std::vector<DistributedGenerator*>& sequences, const std::vector<int64_t>& tokens);
  // Drops the stacked state (its copies of the trees); the next step restacks.
  void clear();

  int64_t restacks() const { return restacks_; }  // steps that stacked the plans anew
  int64_t graph_captures() const { return graph_.captures(); }  // CUDA graphs captured so far

 private:
  // Per sequence: (serial, prefills, positions) expected at the next step if it stays in the batch.
  std::vector<std::array<uint64_t, 3>> key_;
  std::unique_ptr<DecodePlan> plan_;
  std::unique_ptr<DecodeCaches> caches_;
  std::vector<at::Tensor> tree_k_;  // [layers] of [B, Hkv, W, D]: the sequences' replicated trees, zero-padded
  at::Tensor tree_slot_;            // [B, P] column in tree_k_ of each prompt position; -1 elsewhere
  at::Tensor own_slot_;             // [B, P] column in this rank's cache of each prompt position; -1 elsewhere
  at::Tensor column_offset_;        // [B] int32: on the tail owner, generated position p is column p + offset
  int64_t restacks_ = 0;
  bool capturable_ = false;  // the stacked batch's step can be a CUDA graph (a capturable model over NCCL)
  DecodeStepGraph graph_;
};

}  // namespace gsa
