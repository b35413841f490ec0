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
// The LM head and the loss run on kLossChunk positions at a time (runtime/chunked_loss.h): the whole logits of a
// long shard with a large vocabulary never exist at once (128K positions x 128K ids would be 67 GB in fp32).
//
// Answers: an answer is a maximal run of consecutive labelled positions of a row (an answer's tokens; a packed row
// holds many). answer_errors counts, per row and answer, the positions of this rank's shard whose argmax is wrong;
// sp_answer_tally sums them over the world: an answer is right when none of its positions is wrong on any shard.
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

constexpr int64_t kLossChunk = 4096;  // positions per application of the LM head

struct SpLossResult {
  at::Tensor loss;          // scalar, differentiable: this rank's share of the global mean loss
  double global_loss = 0;   // the global batch's mean loss (the same on every rank)
  int64_t labelled = 0;     // labelled tokens of the global batch
  at::Tensor answer_errors; // [B, A] int64 on world.device(): per row and answer (A = most answers in a row),
                            // the answer's wrong positions in this rank's shard
  at::Tensor answer_counts; // [B] int64 on world.device(): answers per row (the whole row, not just the shard)
  std::shared_ptr<void> recompute_state;  // checkpoint_layers: what the backward's recomputation reads; keep it
                                          // (this result) alive until backward is done
};

// labels: [B, T] next-token targets at every position of the padded rows (-100: no loss), any device.
SpLossResult sp_next_token_loss(const LlamaModel& model, const std::vector<GistLayout>& rows, const at::Tensor& labels,
                                const SequenceShards& shards, const AttentionOptions& attention, bool selective,
                                Communicator& sp, Communicator& world, bool checkpoint_layers = false,
                                int64_t loss_chunk = kLossChunk);

struct AnswerTally {
  int64_t correct = 0;  // answers with every position right
  int64_t answers = 0;
  double accuracy() const { return answers > 0 ? static_cast<double>(correct) / static_cast<double>(answers) : 0.0; }
};

// The answers of the global batch of global_rows rows, this replica's rows being [first_row, first_row + B).
// Collective over world (every rank calls it with its own result); the same tally on every rank.
AnswerTally sp_answer_tally(const SpLossResult& result, int64_t first_row, int64_t global_rows, Communicator& world);

}  // namespace gsa
