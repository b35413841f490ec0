#include "gsa/parallel/distributed_decode.h"

#include <algorithm>
#include <atomic>

#include "gsa/parallel/distributed_decode_batch.h"
#include "gsa/parallel/sp_attention.h"
#include "gsa/runtime/error.h"

namespace gsa {
namespace {

// t [1, Hkv, C, D] with rows D elements apart (what the decode kernels' pointer tables read, DecodeCaches): a
// contiguous tensor whose C is 0 or 1 may carry other strides (a view of the prefill's keys), so it is copied.
at::Tensor with_row_layout(const at::Tensor& t) {
  if (t.stride(3) == 1 && t.stride(2) == t.size(3)) return t;
  at::Tensor out = at::empty(t.sizes(), t.options());
  out.copy_(t);
  return out;
}

}  // namespace

DistributedGenerator::DistributedGenerator(const LlamaModel& model, const AttentionOptions& attention,
                                           GistLayout prompt, const SequenceShards& shards, int64_t max_positions,
                                           Communicator& sp)
    : model_(model),
      attention_(attention),
      layout_(std::move(prompt)),
      shards_(shards),
      max_positions_(max_positions),
      prompt_size_(layout_.size()),
      sp_(sp),
      serial_(next_serial()) {
  GSA_CHECK(shards_.length() == layout_.size(), "shards cover ", shards_.length(), " positions, the prompt has ",
            layout_.size());
  GSA_CHECK(max_positions_ >= layout_.size(), "max positions ", max_positions_, " < prompt length ", layout_.size());
  tail_owner_ = sp_.rank() == sp_.size() - 1;
}

DistributedGenerator::~DistributedGenerator() = default;

uint64_t DistributedGenerator::next_serial() {
  static std::atomic<uint64_t> counter{0};
  return ++counter;
}

at::Tensor DistributedGenerator::prefill() {
  at::NoGradGuard no_grad;
  decode_.reset();
  ++prefills_;
  const at::Device device = model_.device();
  const std::vector<GistLayout> rows{layout_};
  SpForwardPlan plan = make_sp_forward_plan(rows, shards_, attention_, sp_, device);
  SequenceParallelAttention attention(plan, attention_.selection, sp_);
  std::vector<SpLayerKeys> keys;
  attention.capture_keys(&keys);
  at::Tensor logits = model_.forward(plan.plan.tokens, plan.plan.rope_pos, attention, attention_,
                                     attention_.selection.enabled, /*checkpoint_layers=*/false,
                                     /*last_position_only=*/true);  // [1, 1, V]

  // The cache: own positions; generated tokens' blocks are added on the tail owner as they come (reserve()).
  const int64_t local = plan.local_size(), begin = plan.local_begin();
  cache_ = KvCache();
  tree_k_.clear();
  for (const SpLayerKeys& layer : keys) {
    cache_.k.push_back(with_row_layout(layer.k_own));
    cache_.v.push_back(with_row_layout(layer.v_own));
    tree_k_.push_back(layer.k_replicated);
  }
  held_ = prompt_local_ = local;
  std::vector<int64_t> slot(prompt_size_, -1);
  for (int64_t pos = begin; pos < begin + local; ++pos) slot[pos] = pos - begin;
  own_slot_ = at::tensor(slot, at::kLong).view({1, prompt_size_}).to(device);
  tree_slot_ = plan.exchange.replicated_slot.narrow(1, 0, prompt_size_);

  // The last prompt position lives on the tail owner.
  at::Tensor last = tail_owner_ ? logits[0][0].contiguous() : at::empty({logits.size(-1)}, logits.options());
  last = last.to(sp_.device());
  sp_.broadcast(last, sp_.size() - 1);
  return last.to(device);
}

std::string DistributedGenerator::cannot_step(int64_t token) const {
  if (cache_.k.empty()) return "a decode step before prefill";
  if (!has_room()) return str_cat("the sequence reached its ", max_positions_, " positions");
  const int64_t vocab = model_.options().vocab_size;
  if (token < 0 || token >= vocab) return str_cat("token id ", token, " is outside the vocabulary [0, ", vocab, ")");
  return "";
}

void DistributedGenerator::prepare_step(int64_t token) {
  const std::string why_not = cannot_step(token);
  GSA_CHECK(why_not.empty(), "distributed decode: ", why_not);
  at::NoGradGuard no_grad;
  reserve(layout_.size() + 1);
  layout_.append_raw(token);
  if (tail_owner_) ++held_;
  if (decode_ == nullptr) {
    decode_ = std::make_unique<DecodePlan>(std::vector<const GistLayout*>{&layout_}, attention_, model_.device());
  } else {
    decode_->advance({token});
  }
}

at::Tensor DistributedGenerator::step(int64_t token) {
  if (own_batch_ == nullptr) own_batch_ = std::make_unique<DistributedDecodeBatch>();
  return own_batch_->step({this}, {token})[0];
}

void DistributedGenerator::reserve(int64_t positions) {
  // Only the tail owner stores generated positions: position p >= prompt lives in column
  // prompt_local_ + (p - prompt_size_) of its cache.
  if (!tail_owner_) return;
  const int64_t have = prompt_size_ + cache_.capacity() - prompt_local_;  // positions the cache reaches
  if (positions <= have) return;
  const int64_t blocks = (positions + kKvBlockPositions - 1) / kKvBlockPositions;
  const int64_t extra = std::min(max_positions_, blocks * kKvBlockPositions) - have;
  ++cache_generation_;
  for (size_t l = 0; l < cache_.k.size(); ++l) {
    cache_.k[l] = at::constant_pad_nd(cache_.k[l], {0, 0, 0, extra});
    cache_.v[l] = at::constant_pad_nd(cache_.v[l], {0, 0, 0, extra});
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
