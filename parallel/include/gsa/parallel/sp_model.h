// The whole model sequence-parallel (DESIGN.md section 5): each rank of an sp group embeds, runs through every
// layer (sequence-parallel attention) and scores only its shard of the batch's rows; the loss is normalised
// over the whole global batch.
//
// Contract: loss is this rank's share, sum of its labelled tokens' cross-entropy / labelled tokens of the global
// batch (every rank of `world`, i.e. dp x sp), so that summing every rank's gradients over `world` (GradientSync)
// gives exactly the gradient of the single-rank mean loss over the global batch. Every rank of sp calls it with
// the same rows; ranks of different dp replicas pass their own rows. A single process is the mesh dp 1 x sp 1
// (local_communicator.h): the trainer has this one path, and the loss and the answer accuracy live here only.
//
// answer_errors: per row of this rank's batch, the labelled positions of its shard that the argmax gets wrong;
// sp_answer_accuracy sums them over the world into whole-answer accuracy of the global batch (a row is right when
// every labelled position of every shard is).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <ATen/ATen.h>

#include "gsa/config/options.h"
#include "gsa/parallel/communicator.h"
#include "gsa/parallel/sequence_shard.h"
#include "gsa/runtime/gist_layout.h"
#include "gsa/runtime/llama_model.h"

namespace gsa {

struct SpLossResult {
  at::Tensor loss;          // scalar, differentiable: this rank's share of the global mean loss
  double global_loss = 0;   // the global batch's mean loss (the same on every rank)
  int64_t labelled = 0;     // labelled tokens of the global batch
  at::Tensor logits;        // [B, T_local, V] this rank's logits (detached)
  at::Tensor answer_errors; // [B] int64 on world.device(): wrong labelled positions of this rank's shard per row
  std::shared_ptr<void> recompute_state;  // checkpoint_layers: what the backward's recomputation reads; keep it
                                          // (this result) alive until backward is done
};

// labels: [B, T] next-token targets at every position of the padded rows (-100: no loss), any device.
SpLossResult sp_next_token_loss(const LlamaModel& model, const std::vector<GistLayout>& rows, const at::Tensor& labels,
                                const SequenceShards& shards, const AttentionOptions& attention, bool selective,
                                Communicator& sp, Communicator& world, bool checkpoint_layers = false);

// Whole-answer accuracy of the global batch of global_rows rows, this replica's rows being
// [first_row, first_row + B): the fraction of rows with no wrong labelled position on any rank. Collective over
// world (every rank calls it with its own result).
double sp_answer_accuracy(const SpLossResult& result, int64_t first_row, int64_t global_rows, Communicator& world);

}  // namespace gsa
