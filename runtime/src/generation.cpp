#include "gsa/runtime/generation.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>

#include "gsa/runtime/attention_plan.h"
#include "gsa/runtime/decode_attention.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/greedy_choice.h"
#include "decode_loop_rules.h"

namespace gsa {

std::string invalid_sampling(const SamplingOptions& options) {
  if (!std::isfinite(options.temperature) || options.temperature < 0) {
    return str_cat("temperature must be a finite number >= 0, got ", options.temperature);
  }
  if (!(options.top_p > 0 && options.top_p <= 1)) return str_cat("top_p must be in (0, 1], got ", options.top_p);
  if (options.max_new_tokens < 1) return str_cat("max_new_tokens must be >= 1, got ", options.max_new_tokens);
  if (options.vocab_limit < 0) return str_cat("vocab_limit must be >= 0, got ", options.vocab_limit);
  return "";
}

int64_t saturating_positions(int64_t prompt, int64_t max_new_tokens) {
  GSA_CHECK(prompt >= 0 && max_new_tokens >= 0, "negative length: prompt ", prompt, ", new tokens ", max_new_tokens);
  return max_new_tokens > std::numeric_limits<int64_t>::max() - prompt ? std::numeric_limits<int64_t>::max()
                                                                       : prompt + max_new_tokens;
}

Sampler::Sampler(const SamplingOptions& options, std::vector<int64_t> forbidden_tokens)
    : options_(options),
      forbidden_(std::move(forbidden_tokens)),
      generator_(at::detail::createCPUGenerator(options.seed)) {
  forbidden_.insert(forbidden_.end(), options.never_tokens.begin(), options.never_tokens.end());
  const std::string problem = invalid_sampling(options);
  GSA_CHECK(problem.empty(), problem);
}

const at::Tensor& Sampler::forbidden_ids(int64_t vocab, at::Device device) {
  if (forbidden_vocab_ != vocab || forbidden_ids_.device() != device) {
    std::vector<int64_t> inside;  // the forbidden ids inside this vocabulary, as one index tensor
    for (int64_t id : forbidden_) {
      if (id >= 0 && id < vocab) inside.push_back(id);
    }
    forbidden_ids_ = at::tensor(inside, at::kLong).to(device);
    forbidden_vocab_ = vocab;
  }
  return forbidden_ids_;
}

int64_t Sampler::id_limit(int64_t vocab) const {
  return options_.vocab_limit > 0 ? std::min(options_.vocab_limit, vocab) : vocab;
}

at::Tensor Sampler::masked(const at::Tensor& logits) {
  // Masked where the logits are (the batched greedy choice then sends ids to the host, not rows).
  at::Tensor l = logits.detach().to(at::kFloat).clone();  // [V]
  const int64_t vocab = l.size(0), limit = id_limit(vocab);
  l.index_fill_(0, forbidden_ids(vocab, l.device()), -std::numeric_limits<float>::infinity());
  l.narrow(0, limit, vocab - limit).fill_(-std::numeric_limits<float>::infinity());
  return l;
}

void Sampler::greedy_into(const at::Tensor& logits, const at::Tensor& out) {
  GSA_CHECK(greedy(), "greedy_into: the sampler is not greedy (temperature ", options_.temperature, ")");
  const int64_t vocab = logits.size(-1);
  if (!greedy_choice_supported(vocab)) {  // LibTorch ops: ~10 kernels
    const at::Tensor l = masked(logits);  // [V]
    out.copy_(at::stack({l.argmax(), at::isnan(l).any().to(at::kLong)}));
    return;
  }
  if (!greedy_workspace_.defined() || greedy_workspace_.device() != logits.device()) {
    greedy_workspace_ = greedy_choice_workspace(logits.device());
  }
  greedy_choice(logits.detach().contiguous().view({vocab}), forbidden_ids(vocab, logits.device()), id_limit(vocab),
                out, greedy_workspace_);  // one kernel
}

namespace {

// The argmax of each masked row of rows [N, V] (the first of equal best ids), NaN refused: one copy to the host.
std::vector<int64_t> greedy_ids(const at::Tensor& rows) {
  const at::Tensor chosen = at::stack({rows.argmax(-1), at::isnan(rows).any(-1).to(at::kLong)}).cpu();  // [2, N]
  const int64_t* id = chosen[0].data_ptr<int64_t>();
  const int64_t* nan = chosen[1].data_ptr<int64_t>();
  for (int64_t i = 0; i < rows.size(0); ++i) GSA_CHECK(nan[i] == 0, "the model produced NaN logits");
  return std::vector<int64_t>(id, id + rows.size(0));
}

}  // namespace

std::vector<int64_t> Sampler::sample_greedy(const std::vector<Sampler*>& samplers,
                                            const std::vector<at::Tensor>& rows) {
  GSA_CHECK(samplers.size() == rows.size(), "sample_greedy: ", samplers.size(), " samplers for ", rows.size(),
            " rows");
  if (rows.empty()) return {};
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> masked;
  for (size_t i = 0; i < rows.size(); ++i) {
    GSA_CHECK(samplers[i]->greedy(), "sample_greedy: sampler ", i, " is not greedy (temperature ",
              samplers[i]->options_.temperature, ")");
    masked.push_back(samplers[i]->masked(rows[i]));
  }
  return greedy_ids(at::stack(masked));  // [N, V]
}

int64_t Sampler::sample(const at::Tensor& logits) {
  at::NoGradGuard no_grad;
  if (greedy()) {  // one kernel where the logits are, two numbers to the host
    const at::Tensor chosen = at::empty({2}, at::TensorOptions(at::kLong).device(logits.device()));
    greedy_into(logits, chosen);
    const at::Tensor host = chosen.cpu();
    GSA_CHECK(host[1].item<int64_t>() == 0, "the model produced NaN logits");
    return host[0].item<int64_t>();
  }
  at::Tensor l = masked(logits).cpu();  // [V]
  GSA_CHECK(!at::isnan(l).any().item<bool>(), "the model produced NaN logits");
  // Shifted by the maximum first, so a tiny temperature gives 0 and -inf (a one-hot softmax), never inf - inf.
  at::Tensor shifted = l.to(at::kDouble) - l.max().to(at::kDouble);
  at::Tensor probs = at::softmax(shifted / options_.temperature, -1);  // [V] fp64
  if (options_.top_p < 1.0) {
    auto [sorted, order] = at::sort(probs, -1, /*descending=*/true);
    at::Tensor before = at::cumsum(sorted, -1) - sorted;  // mass of better tokens
    at::Tensor drop = before >= options_.top_p;           // compared in fp64
    drop[0] = false;                                      // the best token stays
    sorted = sorted.masked_fill(drop, 0);
    probs = at::zeros_like(probs).scatter(0, order, sorted);
  }
  return at::multinomial(probs, 1, /*replacement=*/false, generator_).item<int64_t>();
}

uint64_t Generator::next_serial() {
  static std::atomic<uint64_t> counter{0};
  return ++counter;
}

Generator::Generator(const LlamaModel& model, const AttentionOptions& attention, GistLayout prompt,
                     int64_t max_positions)
    : model_(model),
      attention_(attention),
      layout_(std::move(prompt)),
      max_positions_(max_positions),
      prompt_size_(layout_.size()),
      capturable_(decode_step_capturable(model, attention)),
      serial_(next_serial()) {
  GSA_CHECK(layout_.size() >= 1, "the prompt is empty");
  GSA_CHECK(max_positions >= layout_.size(), "max positions ", max_positions, " < prompt length ", layout_.size());
  reserve(layout_.size());
}

void Generator::reserve(int64_t positions) {
  const int64_t have = cache_.capacity();
  if (positions <= have) return;
  const int64_t blocks = (positions + kKvBlockPositions - 1) / kKvBlockPositions;
  const int64_t target = std::min(max_positions_, blocks * kKvBlockPositions);
  graph_.reset();  // the cache moves: a captured step would write the old one
  ahead_graph_.reset();
  ++cache_generation_;
  if (have == 0) {
    cache_ = model_.make_cache(1, target);
    return;
  }
  KvCache grown = model_.make_cache(1, target);
  for (size_t l = 0; l < cache_.k.size(); ++l) {
    grown.k[l].narrow(2, 0, have).copy_(cache_.k[l]);
    grown.v[l].narrow(2, 0, have).copy_(cache_.v[l]);
  }
  cache_ = std::move(grown);
}

at::Tensor Generator::run(int64_t q_begin, int64_t count) {
  at::NoGradGuard no_grad;
  const at::Device device = model_.device();
  AttentionPlan plan = make_attention_plan({&layout_}, q_begin, count, attention_, device);
  at::Tensor logits = model_.forward(plan.tokens, plan.rope_pos, plan, attention_, attention_.selection.enabled,
                                     &cache_, /*last_position_only=*/true);  // [1, 1, V]
  return logits[0][0];
}

at::Tensor Generator::prefill() {
  GSA_CHECK(prefilled_ == 0, "prefill after prefill_chunk");
  return prefill_chunk(prompt_size_);
}

at::Tensor Generator::prefill_chunk(int64_t count) {
  GSA_CHECK(count >= 1 && prefilled_ < prompt_size_, "prefill_chunk(", count, ") with ", prompt_remaining(),
            " prompt positions left");
  const int64_t n = std::min(count, prompt_remaining());
  at::Tensor logits = run(prefilled_, n);
  prefilled_ += n;
  return prefilled_ == prompt_size_ ? logits : at::Tensor();
}

void Generator::prepare_step(int64_t token) {
  GSA_CHECK(prefilled_ == prompt_size_, "decode step before the prompt is prefilled");
  GSA_CHECK(has_room(), "the sequence reached its ", max_positions_, " positions");
  GSA_CHECK(token >= 0 && token < model_.options().vocab_size, "token id ", token, " is outside the vocabulary [0, ",
            model_.options().vocab_size, ")");
  at::NoGradGuard no_grad;
  reserve(layout_.size() + 1);
  layout_.append_raw(token);
  if (decode_ == nullptr) {
    decode_ = std::make_unique<DecodePlan>(std::vector<const GistLayout*>{&layout_}, attention_, model_.device());
  } else {
    decode_->advance({token});
  }
}

const DecodePlan& Generator::decode_plan() const {
  GSA_CHECK(decode_ != nullptr, "the decode plan exists from the first prepared step on");
  return *decode_;
}

at::Tensor Generator::step(int64_t token) {
  prepare_step(token);
  at::NoGradGuard no_grad;
  auto forward = [this] {
    DecodeLayerAttention layer_attention(*decode_, attention_, cache_);
    return model_.forward(decode_->tokens(), decode_->rope_pos(), layer_attention, attention_,
                          attention_.selection.enabled);  // [1, 1, V]
  };
  const at::Tensor logits = capturable_ ? graph_.run(forward) : forward();
  return logits[0][0];
}

std::vector<int64_t> run_decode_loop(const SamplingOptions& sampling, const DecodeLoop& loop, GenerationStats* stats) {
  using Clock = std::chrono::steady_clock;
  using detail::ms_since;
  std::vector<int64_t> out;
  auto start = Clock::now();
  at::Tensor logits = loop.prefill();
  if (stats != nullptr) stats->prefill_ms = ms_since(start);
  start = Clock::now();
  for (int64_t i = 0; i < sampling.max_new_tokens; ++i) {
    const int64_t token = loop.choose(logits);
    out.push_back(token);
    if (loop.on_token) loop.on_token(token);
    if (detail::decode_loop_ends(sampling, token, i + 1, loop.has_room())) break;
    logits = loop.step(token);
  }
  if (stats != nullptr) stats->decode_ms = ms_since(start);
  return out;
}

std::vector<int64_t> Generator::generate(const SamplingOptions& sampling, GenerationStats* stats,
                                         const std::function<void(int64_t)>& on_token) {
  Sampler sampler(sampling, layout_.gist_token_ids);
  if (decode_ahead_ && sampler.greedy()) return generate_ahead(sampling, sampler, stats, on_token);
  DecodeLoop loop{[&] { return prefill(); }, [&](const at::Tensor& logits) { return sampler.sample(logits); },
                  [&](int64_t token) { return step(token); }, [&] { return has_room(); }, on_token};
  return run_decode_loop(sampling, loop, stats);
}

}  // namespace gsa
