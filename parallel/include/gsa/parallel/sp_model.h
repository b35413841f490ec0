// The whole model sequence-parallel (DESIGN.md section 5): each rank of an sp group embeds, runs through every
// layer (sequence-parallel attention) and scores only its shard of the batch's rows; the loss is normalised
// over the whole global batch.
//
// Contract: loss is this rank's share, sum of its labelled tokens' cross-entropy / labelled tokens of the global
// batch (every rank of `world`, i.e. dp x sp), so that summing every rank's gradients over `world` (GradientSync)
// gives exactly the gradient of the single-rank mean loss over the global batch. Every rank of sp calls it with
// the same rows; ranks of different dp replicas pass their own rows.
#pragma once

#include <cstdint>
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
};

// labels: [B, T] next-token targets at every position of the padded rows (-100: no loss), any device.
SpLossResult sp_next_token_loss(const LlamaModel& model, const std::vector<GistLayout>& rows, const at::Tensor& labels,
                                const SequenceShards& shards, const AttentionOptions& attention, bool selective,
                                Communicator& sp, Communicator& world);

}  // namespace gsa
