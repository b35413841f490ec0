#include "gsa/parallel/sp_model.h"

#include "gsa/parallel/sp_attention.h"
#include "gsa/runtime/chunked_loss.h"
#include "gsa/runtime/error.h"

namespace gsa {

SpLossResult sp_next_token_loss(const LlamaModel& model, const std::vector<GistLayout>& rows, const at::Tensor& labels,
                                const SequenceShards& shards, const AttentionOptions& attention, bool selective,
                                Communicator& sp, Communicator& world, bool checkpoint_layers, int64_t loss_chunk) {
  // The plan and the layer attention live as long as the result when the backward recomputes the layers.
  struct State {
    SpForwardPlan plan;
    AttentionOptions attention;
    std::unique_ptr<SequenceParallelAttention> layers;
  };
  auto state = std::make_shared<State>(State{make_sp_forward_plan(rows, shards, attention, sp, model.device()),
                                             attention, nullptr});
  const SpForwardPlan& plan = state->plan;
  GSA_CHECK(labels.dim() == 2 && labels.size(0) == plan.plan.batch && labels.size(1) == shards.length(), "labels ",
            labels.sizes(), " do not match the batch [", plan.plan.batch, ", ", shards.length(), "]");
  state->layers = std::make_unique<SequenceParallelAttention>(plan, state->attention.selection, sp);
  const at::Tensor hidden = model.forward_hidden(plan.plan.tokens, plan.plan.rope_pos, *state->layers,
                                                 state->attention, selective, checkpoint_layers);  // [B, Tl, H]
  const at::Tensor device_labels = labels.to(hidden.device());                                      // [B, T]
  const at::Tensor local_labels = device_labels.narrow(1, plan.local_begin(), plan.local_size());   // [B, Tl]
  at::Tensor argmax;                                                                                // [B, Tl]
  const at::Tensor loss_sum = chunked_loss_sum(model, hidden, local_labels, loss_chunk, &argmax);

  // One small all-reduce gives the global labelled count and loss sum.
  at::Tensor totals = at::stack({(local_labels != -100).sum().to(at::kDouble), loss_sum.detach().to(at::kDouble)})
                          .to(world.device());
  world.all_reduce(totals, ReduceOp::kSum);
  const at::Tensor host = totals.cpu();
  const double* sums = host.data_ptr<double>();  // [labelled tokens, loss sum]
  SpLossResult result;
  result.labelled = static_cast<int64_t>(sums[0]);
  GSA_CHECK(result.labelled > 0, "the global batch has no labelled tokens");
  result.loss = loss_sum / static_cast<double>(result.labelled);
  result.global_loss = sums[1] / static_cast<double>(result.labelled);
  if (checkpoint_layers) result.recompute_state = state;

  // Answers from the whole rows' labels (the same numbering on every rank of sp): a run starts at a labelled
  // position whose predecessor is not labelled.
  at::NoGradGuard no_grad;
  const at::Tensor labelled = device_labels != -100;                                                // [B, T]
  const at::Tensor before = at::constant_pad_nd(labelled.narrow(1, 0, labelled.size(1) - 1), {1, 0}, 0);
  const at::Tensor starts = labelled.logical_and(before.logical_not());
  const at::Tensor answer_of = starts.to(at::kLong).cumsum(1) - 1;                                 // [B, T]
  const at::Tensor counts = starts.sum(1);                                                          // [B]
  const int64_t widest = std::max<int64_t>(1, counts.max().item<int64_t>());
  const at::Tensor wrong = (argmax != local_labels).logical_and(local_labels != -100);              // [B, Tl]
  const at::Tensor local_answer = answer_of.narrow(1, plan.local_begin(), plan.local_size()).clamp_min(0);
  const int64_t batch = labels.size(0);
  const at::Tensor row = at::arange(batch, local_answer.options()).view({batch, 1}).expand_as(local_answer);
  at::Tensor errors = at::zeros({batch * widest}, local_answer.options());
  errors.index_add_(0, (row * widest + local_answer).reshape({-1}), wrong.to(at::kLong).reshape({-1}));
  result.answer_errors = errors.view({batch, widest}).to(world.device());
  result.answer_counts = counts.to(world.device());
  return result;
}

AnswerTally sp_answer_tally(const SpLossResult& result, int64_t first_row, int64_t global_rows, Communicator& world) {
  const int64_t rows = result.answer_errors.size(0);
  GSA_CHECK(first_row >= 0 && first_row + rows <= global_rows, "rows [", first_row, ", ", first_row + rows,
            ") are outside the global batch of ", global_rows);
  const int64_t widest = world.all_reduce_int(result.answer_errors.size(1), ReduceOp::kMax);
  const auto longs = at::TensorOptions().dtype(at::kLong).device(world.device());
  // Errors add up over the shards of a row; the counts are the same on every rank of sp, hence the max.
  at::Tensor errors = at::zeros({global_rows, widest}, longs);
  errors.narrow(0, first_row, rows).narrow(1, 0, result.answer_errors.size(1)).copy_(result.answer_errors);
  world.all_reduce(errors, ReduceOp::kSum);
  at::Tensor counts = at::zeros({global_rows}, longs);
  counts.narrow(0, first_row, rows).copy_(result.answer_counts);
  world.all_reduce(counts, ReduceOp::kMax);
  const at::Tensor held = at::arange(widest, longs).view({1, widest}) < counts.view({global_rows, 1});
  AnswerTally tally;
  tally.answers = counts.sum().item<int64_t>();
  tally.correct = (errors == 0).logical_and(held).sum().item<int64_t>();
  return tally;
}

}  // namespace gsa
