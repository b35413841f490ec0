#include "gsa/parallel/distributed_decode.h"

#include <algorithm>

#include "gsa/parallel/sp_attention.h"
#include "gsa/runtime/attention.h"
#include "gsa/runtime/error.h"

namespace gsa {

// One decode step's attention: the keys this rank holds, then an all-gather merge over the sp group.
class DistributedGenerator::DecodeAttention : public LayerAttention {
 public:
  DecodeAttention(DistributedGenerator& gen, const AttentionPlan& plan) : gen_(gen), plan_(plan) {}

  at::Tensor attend(int64_t layer, bool layer_selects, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                    double scale) override {
    if (gen_.tail_owner_) {
      const int64_t column = gen_.held_ - 1;  // the new position was reserved before the forward
      gen_.k_[layer].narrow(2, column, 1).copy_(k);
      gen_.v_[layer].narrow(2, column, 1).copy_(v);
    }
    KeyView own{gen_.k_[layer], gen_.v_[layer], gen_.own_slot_};
    KeyView tree{gen_.tree_k_[layer], gen_.tree_k_[layer], gen_.tree_slot_};
    PartialAttention mine = gsa_attention_partial(q, own, plan_, layer_selects, gen_.attention_.selection, scale,
                                                  &tree, nullptr);
    // [B, Hq, Tqp, D + 1] from every rank, merged in fp32.
    at::Tensor packed = at::cat({mine.out, mine.lse.unsqueeze(-1)}, -1).contiguous();
    Communicator& sp = gen_.sp_;
    at::Tensor gathered = at::empty({sp.size() * packed.numel()}, packed.options());
    sp.all_gather(packed.reshape({-1}), gathered);
    std::vector<int64_t> shape{sp.size()};
    for (int64_t s : packed.sizes()) shape.push_back(s);
    gathered = gathered.view(shape);
    const int64_t d = packed.size(-1) - 1;
    std::vector<PartialAttention> parts;
    for (int r = 0; r < sp.size(); ++r) {
      parts.push_back({gathered[r].narrow(-1, 0, d), gathered[r].select(-1, d)});
    }
    return finish_attention(merge_partials(parts), plan_, q.scalar_type());
  }

 private:
  DistributedGenerator& gen_;
  const AttentionPlan& plan_;
};

DistributedGenerator::DistributedGenerator(const LlamaModel& model, const AttentionOptions& attention,
                                           GistLayout prompt, const SequenceShards& shards, int64_t capacity,
                                           Communicator& sp)
    : model_(model), attention_(attention), layout_(std::move(prompt)), shards_(shards), capacity_(capacity),
      sp_(sp) {
  GSA_CHECK(shards_.length() == layout_.size(), "shards cover ", shards_.length(), " positions, the prompt has ",
            layout_.size());
  GSA_CHECK(capacity_ >= layout_.size(), "cache capacity ", capacity_, " < prompt length ", layout_.size());
  tail_owner_ = sp_.rank() == sp_.size() - 1;
}

at::Tensor DistributedGenerator::prefill() {
  at::NoGradGuard no_grad;
  const at::Device device = model_.device();
  const std::vector<GistLayout> rows{layout_};
  SpForwardPlan plan = make_sp_forward_plan(rows, shards_, attention_, sp_, device);
  SequenceParallelAttention attention(plan, attention_.selection, sp_);
  std::vector<SpLayerKeys> keys;
  attention.capture_keys(&keys);
  at::Tensor logits = model_.forward(plan.plan.tokens, plan.plan.rope_pos, attention, attention_,
                                     attention_.selection.enabled);                  // [1, Tl, V]

  // The cache: own positions, plus the reserve for generated tokens on the tail owner.
  const int64_t local = plan.local_size(), begin = plan.local_begin();
  const int64_t reserve = tail_owner_ ? capacity_ - layout_.size() : 0;
  k_.clear();
  v_.clear();
  tree_k_.clear();
  for (const SpLayerKeys& layer : keys) {
    k_.push_back(at::constant_pad_nd(layer.k_own, {0, 0, 0, reserve}));
    v_.push_back(at::constant_pad_nd(layer.v_own, {0, 0, 0, reserve}));
    tree_k_.push_back(layer.k_replicated);
  }
  held_ = local;
  std::vector<int64_t> slot(capacity_, -1);
  for (int64_t pos = begin; pos < begin + local; ++pos) slot[pos] = pos - begin;
  for (int64_t pos = layout_.size(); tail_owner_ && pos < capacity_; ++pos) slot[pos] = local + pos - layout_.size();
  own_slot_ = at::tensor(slot, at::kLong).view({1, capacity_}).to(device);
  tree_slot_ = at::constant_pad_nd(plan.exchange.replicated_slot, {0, capacity_ - layout_.size()}, -1);

  // The last prompt position lives on the tail owner.
  at::Tensor last = tail_owner_ ? logits[0][local - 1].contiguous()
                                : at::empty({logits.size(-1)}, logits.options());
  last = last.to(sp_.device());
  sp_.broadcast(last, sp_.size() - 1);
  return last.to(device);
}

at::Tensor DistributedGenerator::step(int64_t token) {
  GSA_CHECK(!k_.empty(), "DistributedGenerator::step before prefill");
  GSA_CHECK(layout_.size() < capacity_, "KV cache is full (", capacity_, " positions)");
  at::NoGradGuard no_grad;
  layout_.append_raw(token);
  if (tail_owner_) ++held_;
  AttentionPlan plan = make_attention_plan({&layout_}, layout_.size() - 1, 1, attention_, model_.device());
  DecodeAttention attention(*this, plan);
  at::Tensor logits =
      model_.forward(plan.tokens, plan.rope_pos, attention, attention_, attention_.selection.enabled);  // [1, 1, V]
  return logits[0][0];
}

std::vector<int64_t> DistributedGenerator::generate(const SamplingOptions& sampling, GenerationStats* stats) {
  Sampler sampler(sampling, layout_.gist_token_ids);
  // Rank 0 samples and broadcasts, so every rank follows the same tokens whatever the sampling.
  auto choose = [&](const at::Tensor& logits) {
    at::Tensor chosen = at::full({1}, sp_.rank() == 0 ? sampler.sample(logits) : int64_t{0},
                                 at::TensorOptions().dtype(at::kLong).device(sp_.device()));
    sp_.broadcast(chosen, 0);
    return chosen.item<int64_t>();
  };
  DecodeLoop loop{[&] { return prefill(); }, choose, [&](int64_t token) { return step(token); },
                  [&] { return layout_.size() < capacity_; }};
  return run_decode_loop(sampling, loop, stats);
}

}  // namespace gsa
