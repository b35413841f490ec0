#include "gsa/parallel/sp_model.h"

#include "gsa/parallel/sp_attention.h"
#include "gsa/runtime/error.h"

namespace gsa {

SpLossResult sp_next_token_loss(const LlamaModel& model, const std::vector<GistLayout>& rows, const at::Tensor& labels,
                                const SequenceShards& shards, const AttentionOptions& attention, bool selective,
                                Communicator& sp, Communicator& world) {
  SpForwardPlan plan = make_sp_forward_plan(rows, shards, attention, sp, model.device());
  GSA_CHECK(labels.dim() == 2 && labels.size(0) == plan.plan.batch && labels.size(1) == shards.length(), "labels ",
            labels.sizes(), " do not match the batch [", plan.plan.batch, ", ", shards.length(), "]");
  SequenceParallelAttention sp_attention(plan, attention.selection, sp);
  at::Tensor logits = model.forward(plan.plan.tokens, plan.plan.rope_pos, sp_attention, attention, selective);
  at::Tensor local_labels = labels.narrow(1, plan.local_begin(), plan.local_size()).to(logits.device());  // [B, Tl]
  at::Tensor loss_sum = at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}), local_labels.reshape({-1}), {},
                                               at::Reduction::Sum, /*ignore_index=*/-100);

  SpLossResult result;
  result.labelled = world.all_reduce_int((local_labels != -100).sum().item<int64_t>(), ReduceOp::kSum);
  GSA_CHECK(result.labelled > 0, "the global batch has no labelled tokens");
  result.loss = loss_sum / static_cast<double>(result.labelled);
  at::Tensor total = result.loss.detach().to(at::kDouble).reshape({1}).to(world.device()).contiguous();
  world.all_reduce(total, ReduceOp::kSum);
  result.global_loss = total.item<double>();
  result.logits = logits.detach();
  return result;
}

}  // namespace gsa
