#include "gsa/runtime/decode_batch.h"

#include "gsa/runtime/decode_attention.h"
#include "gsa/runtime/error.h"

namespace gsa {

DecodeBatch::DecodeBatch() = default;
DecodeBatch::~DecodeBatch() = default;

std::vector<at::Tensor> DecodeBatch::step(const std::vector<Generator*>& sequences,
                                          const std::vector<int64_t>& tokens) {
  GSA_CHECK(!sequences.empty() && sequences.size() == tokens.size(), "batched decode: ", sequences.size(),
            " sequences for ", tokens.size(), " tokens");
  at::NoGradGuard no_grad;
  const LlamaModel& model = sequences[0]->model_;
  const AttentionOptions& attention = sequences[0]->attention_;
  std::vector<std::pair<uint64_t, uint64_t>> key;
  for (size_t i = 0; i < sequences.size(); ++i) {
    Generator& g = *sequences[i];
    GSA_CHECK(&g.model_ == &model, "batched decode: the sequences need one model");
    g.prepare_step(tokens[i]);
    key.push_back({g.serial_, g.cache_generation_});
  }
  if (key != key_ || plan_ == nullptr) {
    std::vector<const DecodePlan*> plans;
    std::vector<KvCache*> caches;
    for (Generator* g : sequences) {
      plans.push_back(g->decode_.get());
      caches.push_back(&g->cache_);
    }
    plan_ = std::make_unique<DecodePlan>(DecodePlan::stack(plans));
    caches_ = std::make_unique<DecodeCaches>(caches);
    graph_.reset();
    key_ = std::move(key);
    ++restacks_;
  } else {
    plan_->advance(tokens);
  }
  auto forward = [&] {
    DecodeLayerAttention layer_attention(*plan_, attention, *caches_);
    return model.forward(plan_->tokens(), plan_->rope_pos(), layer_attention, attention,
                         attention.selection.enabled);  // [B, 1, V]
  };
  const at::Tensor logits = sequences[0]->capturable_ ? graph_.run(forward) : forward();
  std::vector<at::Tensor> out;
  for (int64_t b = 0; b < plan_->batch(); ++b) out.push_back(logits[b][0]);
  return out;
}

std::vector<at::Tensor> decode_step_batched(const std::vector<Generator*>& sequences,
                                            const std::vector<int64_t>& tokens) {
  DecodeBatch batch;
  return batch.step(sequences, tokens);
}

}  // namespace gsa
