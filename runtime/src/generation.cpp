#include "gsa/runtime/generation.h"

#include <algorithm>
#include <chrono>
#include <limits>

#include "gsa/runtime/attention_plan.h"
#include "gsa/runtime/error.h"

namespace gsa {

Sampler::Sampler(const SamplingOptions& options, std::vector<int64_t> forbidden_tokens)
    : options_(options), forbidden_(std::move(forbidden_tokens)), generator_(at::detail::createCPUGenerator(options.seed)) {
  GSA_CHECK(options.temperature >= 0, "temperature must be >= 0, got ", options.temperature);
  GSA_CHECK(options.top_p > 0 && options.top_p <= 1, "top_p must be in (0, 1], got ", options.top_p);
  GSA_CHECK(options.vocab_limit >= 0, "vocab_limit must be >= 0, got ", options.vocab_limit);
}

int64_t Sampler::sample(const at::Tensor& logits) {
  at::NoGradGuard no_grad;
  at::Tensor l = logits.detach().to(at::kCPU, at::kFloat).clone();                 // [V]
  for (int64_t id : forbidden_) {
    if (id >= 0 && id < l.size(0)) l[id] = -std::numeric_limits<float>::infinity();
  }
  if (options_.vocab_limit > 0 && options_.vocab_limit < l.size(0)) {
    l.narrow(0, options_.vocab_limit, l.size(0) - options_.vocab_limit).fill_(-std::numeric_limits<float>::infinity());
  }
  if (options_.temperature == 0.0) return l.argmax().item<int64_t>();
  at::Tensor probs = at::softmax(l / options_.temperature, -1);
  if (options_.top_p < 1.0) {
    auto [sorted, order] = at::sort(probs, -1, /*descending=*/true);
    at::Tensor before = at::cumsum(sorted, -1) - sorted;                              // mass of better tokens
    sorted = sorted.masked_fill(before >= options_.top_p, 0);
    probs = at::zeros_like(probs).scatter(0, order, sorted);
  }
  return at::multinomial(probs, 1, /*replacement=*/false, generator_).item<int64_t>();
}

Generator::Generator(const LlamaModel& model, const AttentionOptions& attention, GistLayout prompt, int64_t capacity)
    : model_(model), attention_(attention), layout_(std::move(prompt)) {
  GSA_CHECK(layout_.size() >= 1, "the prompt is empty");
  GSA_CHECK(capacity >= layout_.size(), "cache capacity ", capacity, " < prompt length ", layout_.size());
  cache_ = model.make_cache(1, capacity);
}

at::Tensor Generator::run(int64_t q_begin, int64_t count) {
  at::NoGradGuard no_grad;
  const at::Device device = model_.device();
  AttentionPlan plan = make_attention_plan({&layout_}, q_begin, count, attention_, device);
  at::Tensor logits =
      model_.forward(plan.tokens, plan.rope_pos, plan, attention_, attention_.selection.enabled, &cache_);
  return logits[0][count - 1];
}

at::Tensor Generator::prefill() { return run(0, layout_.size()); }

at::Tensor Generator::step(int64_t token) {
  GSA_CHECK(layout_.size() < cache_.capacity(), "KV cache is full (", cache_.capacity(), " positions)");
  layout_.append_raw(token);
  return run(layout_.size() - 1, 1);
}

std::vector<int64_t> run_decode_loop(const SamplingOptions& sampling, const DecodeLoop& loop,
                                     GenerationStats* stats) {
  using Clock = std::chrono::steady_clock;
  auto ms_since = [](Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); };
  std::vector<int64_t> out;
  auto start = Clock::now();
  at::Tensor logits = loop.prefill();
  if (stats != nullptr) stats->prefill_ms = ms_since(start);
  start = Clock::now();
  for (int64_t i = 0; i < sampling.max_new_tokens; ++i) {
    const int64_t token = loop.choose(logits);
    out.push_back(token);
    const bool stop = std::find(sampling.stop_tokens.begin(), sampling.stop_tokens.end(), token) !=
                      sampling.stop_tokens.end();
    if (stop || i + 1 == sampling.max_new_tokens || !loop.has_room()) break;
    logits = loop.step(token);
  }
  if (stats != nullptr) stats->decode_ms = ms_since(start);
  return out;
}

std::vector<int64_t> Generator::generate(const SamplingOptions& sampling, GenerationStats* stats) {
  Sampler sampler(sampling, layout_.gist_token_ids);
  DecodeLoop loop{[&] { return prefill(); }, [&](const at::Tensor& logits) { return sampler.sample(logits); },
                  [&](int64_t token) { return step(token); },
                  [&] { return layout_.size() < cache_.capacity(); }};
  return run_decode_loop(sampling, loop, stats);
}

}  // namespace gsa
