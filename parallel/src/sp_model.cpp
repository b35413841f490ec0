#include "gsa/parallel/sp_model.h"

#include "gsa/parallel/sp_attention.h"
#include "gsa/runtime/error.h"

namespace gsa {

SpLossResult sp_next_token_loss(const LlamaModel& model, const std::vector<GistLayout>& rows, const at::Tensor& labels,
                                const SequenceShards& shards, const AttentionOptions& attention, bool selective,
                                Communicator& sp, Communicator& world, bool checkpoint_layers) {
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
  at::Tensor logits = model.forward(plan.plan.tokens, plan.plan.rope_pos, *state->layers, state->attention, selective,
                                    checkpoint_layers);
  at::Tensor local_labels = labels.narrow(1, plan.local_begin(), plan.local_size()).to(logits.device());  // [B, Tl]
  at::Tensor loss_sum = at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}), local_labels.reshape({-1}), {},
                                               at::Reduction::Sum, /*ignore_index=*/-100);

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
  result.logits = logits.detach();
  if (checkpoint_layers) result.recompute_state = state;
  result.answer_errors =
      (result.logits.argmax(-1) != local_labels).logical_and(local_labels != -100).sum(-1).to(world.device());
  return result;
}

double sp_answer_accuracy(const SpLossResult& result, int64_t first_row, int64_t global_rows, Communicator& world) {
  const int64_t rows = result.answer_errors.size(0);
  GSA_CHECK(first_row >= 0 && first_row + rows <= global_rows, "rows [", first_row, ", ", first_row + rows,
            ") are outside the global batch of ", global_rows);
  at::Tensor per_row = at::zeros({global_rows}, at::TensorOptions().dtype(at::kLong).device(world.device()));
  per_row.narrow(0, first_row, rows).copy_(result.answer_errors);
  world.all_reduce(per_row);
  return (per_row == 0).to(at::kDouble).mean().item<double>();
}

}  // namespace gsa
