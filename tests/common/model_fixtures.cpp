#include "common/model_fixtures.h"

#include "gsa/runtime/attention_plan.h"

namespace gsa::test {

ModelOptions tiny_model_options() {
  ModelOptions o;
  o.vocab_size = 264;
  o.hidden_size = 32;
  o.intermediate_size = 64;
  o.num_layers = 3;
  o.num_heads = 4;
  o.num_kv_heads = 2;
  o.head_dim = 8;
  o.init_std = 0.2;
  return o;
}

at::Tensor full_recompute_last(const LlamaModel& model, const GistLayout& layout, const AttentionOptions& attention) {
  at::NoGradGuard no_grad;
  AttentionPlan plan = make_attention_plan({&layout}, 0, -1, attention, model.device());
  at::Tensor logits = model.forward(plan.tokens, plan.rope_pos, plan, attention, attention.selection.enabled);
  return logits[0][layout.size() - 1];
}

}  // namespace gsa::test
