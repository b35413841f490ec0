#include "gsa/parallel/distributed_decode.h"

#include <algorithm>
#include <optional>

#include "gsa/parallel/phase_timers.h"
#include "gsa/parallel/sp_attention.h"
#include "gsa/runtime/attention.h"
#include "gsa/runtime/selection.h"
#include "gsa/runtime/sparse_decode.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/kernel_choice.h"

namespace gsa {

// One decode step's attention over the decode plan (decode_plan.h): the plan's rows and the chunks selection picks
// over the replicated gist tree, mapped to the columns this rank holds (the rest are other ranks'), the generated
// range on the tail owner; the sparse decode kernels (or the reference backend) give this rank's partial, then
// one all-gather of the small partial outputs and log-sum-exps merges them in fp32.
class DistributedGenerator::DecodeAttention : public LayerAttention {
 public:
  DecodeAttention(DistributedGenerator& gen, const DecodePlan& plan) : gen_(gen), plan_(plan) {
    const at::Tensor& like = gen_.k_[0];
    const int32_t begin = static_cast<int32_t>(gen_.prompt_local_);
    const int32_t end = gen_.tail_owner_ ? static_cast<int32_t>(gen_.held_) : begin;  // generated: tail only
    const auto ints = at::TensorOptions().dtype(at::kInt).device(like.device());
    generated_ = DecodeRange{at::full({1}, begin, ints), at::full({1}, end, ints), end - begin};
  }

  at::Tensor attend(int64_t layer, bool layer_selects, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                    double scale) override {
    if (gen_.tail_owner_) {
      const int64_t column = gen_.held_ - 1;  // the new position was reserved before the forward
      gen_.k_[layer].narrow(2, column, 1).copy_(k);
      gen_.v_[layer].narrow(2, column, 1).copy_(v);
    }
    const at::Tensor q1 = q.select(2, 0);                                                  // [1, Hq, D]
    const at::Tensor& keys = gen_.k_[layer];
    const int64_t hkv = keys.size(1);
    at::Tensor rows = plan_.prompt_rows(layer_selects).to(at::kLong).unsqueeze(1).expand({1, hkv, -1});
    const SelectionPlan& sel = plan_.selection();
    if (layer_selects && sel.count > 0) {
      const at::Tensor picked = select_chunks(q1.index_select(0, sel.row), gen_.tree_k_[layer], sel, plan_.gist(),
                                              gen_.attention_.selection, gen_.tree_slot_, AttentionBackend::kAuto,
                                              plan_.selective_covered())
                                    .key_pos;                                              // [1, Hkv, S] positions
      rows = at::cat({rows, picked}, 2);
    }
    // Positions -> this rank's columns (-1: held elsewhere).
    const at::Tensor columns =
        gen_.own_slot_.index({at::zeros_like(rows), rows.clamp_min(0)}).masked_fill(rows < 0, -1).to(at::kInt);
    const bool kernels =
        use_kernel_backend(gen_.attention_.backend, q1.is_cuda(),
                           sparse_decode_unsupported(q1, keys.scalar_type(), hkv), str_cat("decode q ", q1.sizes()));
    std::optional<ScopedPhase> compute(std::in_place, Phase::kAttention);
    const gsa::DecodeAttention mine =
        kernels ? sparse_decode(q1, keys, gen_.v_[layer], columns, scale, 0, &generated_)
                : sparse_decode_reference(q1, keys, gen_.v_[layer], columns, scale, &generated_);
    compute.reset();
    // [1, Hq, D + 1] from every rank, merged in fp32.
    ScopedPhase merge(Phase::kDecodeMerge);
    at::Tensor packed = at::cat({mine.out, mine.lse.unsqueeze(-1)}, -1).contiguous();
    Communicator& sp = gen_.sp_;
    at::Tensor gathered = at::empty({sp.size() * packed.numel()}, packed.options());
    sp.all_gather(packed.reshape({-1}), gathered);
    std::vector<int64_t> shape{sp.size()};
    for (int64_t s : packed.sizes()) shape.push_back(s);
    gathered = gathered.view(shape);
    const int64_t d = packed.size(-1) - 1;
    std::vector<PartialAttention> parts;
    for (int r = 0; r < sp.size(); ++r) parts.push_back({gathered[r].narrow(-1, 0, d), gathered[r].select(-1, d)});
    return merge_partials(parts).out.to(q.scalar_type()).unsqueeze(2);                      // [1, Hq, 1, D]
  }

 private:
  DistributedGenerator& gen_;
  const DecodePlan& plan_;
  DecodeRange generated_;
};

DistributedGenerator::DistributedGenerator(const LlamaModel& model, const AttentionOptions& attention,
                                           GistLayout prompt, const SequenceShards& shards,
                                           int64_t max_positions, Communicator& sp)
    : model_(model), attention_(attention), layout_(std::move(prompt)), shards_(shards),
      max_positions_(max_positions), prompt_size_(layout_.size()), sp_(sp) {
  GSA_CHECK(shards_.length() == layout_.size(), "shards cover ", shards_.length(), " positions, the prompt has ",
            layout_.size());
  GSA_CHECK(max_positions_ >= layout_.size(), "max positions ", max_positions_, " < prompt length ", layout_.size());
  tail_owner_ = sp_.rank() == sp_.size() - 1;
}

at::Tensor DistributedGenerator::prefill() {
  at::NoGradGuard no_grad;
  decode_.reset();
  const at::Device device = model_.device();
  const std::vector<GistLayout> rows{layout_};
  SpForwardPlan plan = make_sp_forward_plan(rows, shards_, attention_, sp_, device);
  SequenceParallelAttention attention(plan, attention_.selection, sp_);
  std::vector<SpLayerKeys> keys;
  attention.capture_keys(&keys);
  at::Tensor logits = model_.forward(plan.plan.tokens, plan.plan.rope_pos, attention, attention_,
                                     attention_.selection.enabled, /*checkpoint_layers=*/false,
                                     /*last_position_only=*/true);                   // [1, 1, V]

  // The cache: own positions; generated tokens' blocks are added on the tail owner as they come (reserve()).
  const int64_t local = plan.local_size(), begin = plan.local_begin();
  k_.clear();
  v_.clear();
  tree_k_.clear();
  for (const SpLayerKeys& layer : keys) {
    k_.push_back(layer.k_own);
    v_.push_back(layer.v_own);
    tree_k_.push_back(layer.k_replicated);
  }
  held_ = prompt_local_ = local;
  std::vector<int64_t> slot(prompt_size_, -1);
  for (int64_t pos = begin; pos < begin + local; ++pos) slot[pos] = pos - begin;
  own_slot_ = at::tensor(slot, at::kLong).view({1, prompt_size_}).to(device);
  tree_slot_ = plan.exchange.replicated_slot;

  // The last prompt position lives on the tail owner.
  at::Tensor last = tail_owner_ ? logits[0][0].contiguous()
                                : at::empty({logits.size(-1)}, logits.options());
  last = last.to(sp_.device());
  sp_.broadcast(last, sp_.size() - 1);
  return last.to(device);
}

at::Tensor DistributedGenerator::step(int64_t token) {
  GSA_CHECK(!k_.empty(), "DistributedGenerator::step before prefill");
  GSA_CHECK(has_room(), "the sequence reached its ", max_positions_, " positions");
  at::NoGradGuard no_grad;
  reserve(layout_.size() + 1);
  layout_.append_raw(token);
  if (tail_owner_) ++held_;
  if (decode_ == nullptr) {
    decode_ = std::make_unique<DecodePlan>(std::vector<const GistLayout*>{&layout_}, attention_, model_.device());
  } else {
    decode_->advance({token});
  }
  DecodeAttention attention(*this, *decode_);
  at::Tensor logits = model_.forward(decode_->tokens(), decode_->rope_pos(), attention, attention_,
                                     attention_.selection.enabled);  // [1, 1, V]
  return logits[0][0];
}

void DistributedGenerator::reserve(int64_t positions) {
  const int64_t have = own_slot_.size(1);
  if (positions <= have) return;
  const int64_t blocks = (positions + kKvBlockPositions - 1) / kKvBlockPositions;
  const int64_t extra = std::min(max_positions_, blocks * kKvBlockPositions) - have;
  tree_slot_ = at::constant_pad_nd(tree_slot_, {0, extra}, -1);
  if (!tail_owner_) {
    own_slot_ = at::constant_pad_nd(own_slot_, {0, extra}, -1);
    return;
  }
  // Generated position p lives in column prompt_local_ + (p - prompt_size_) of the tail owner's K/V.
  at::Tensor columns = at::arange(have, have + extra, own_slot_.options()) - prompt_size_ + prompt_local_;
  own_slot_ = at::cat({own_slot_, columns.view({1, extra})}, 1);
  for (size_t l = 0; l < k_.size(); ++l) {
    k_[l] = at::constant_pad_nd(k_[l], {0, 0, 0, extra});
    v_[l] = at::constant_pad_nd(v_[l], {0, 0, 0, extra});
  }
}

std::vector<int64_t> DistributedGenerator::generate(const SamplingOptions& sampling, GenerationStats* stats,
                                                    const std::function<void(int64_t)>& on_token) {
  Sampler sampler(sampling, layout_.gist_token_ids);
  // Rank 0 samples and broadcasts, so every rank follows the same tokens whatever the sampling.
  auto choose = [&](const at::Tensor& logits) {
    at::Tensor chosen = at::full({1}, sp_.rank() == 0 ? sampler.sample(logits) : int64_t{0},
                                 at::TensorOptions().dtype(at::kLong).device(sp_.device()));
    sp_.broadcast(chosen, 0);
    return chosen.item<int64_t>();
  };
  DecodeLoop loop{[&] { return prefill(); }, choose, [&](int64_t token) { return step(token); },
                  [&] { return has_room(); }, on_token};
  return run_decode_loop(sampling, loop, stats);
}

}  // namespace gsa
