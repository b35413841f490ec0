// Prefill, decode steps and sampling over a LlamaModel with a KV cache (method sections 7.2-7.3).
//
// Contract:
// - Generator::prefill runs the whole prompt layout once (selection for the suffix queries in selective
//   layers when selection is enabled), fills the cache and returns the logits of the last position.
// - Generator::step appends one raw token to the layout (RoPE position last + 1; generated tokens are never
//   gisted) and runs only that position against the cache; its logits equal those of a full recompute of the
//   whole sequence at the last position (selection depends only on the query's causal prefix).
// - Sampler: temperature 0 is greedy (lowest id wins ties); otherwise softmax(logits / temperature), cut to
//   the smallest set whose probability reaches top_p, sampled from a generator seeded once. Gist ids and ids at or
//   above vocab_limit (when > 0) are never produced (their logits are -inf before anything else).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include <ATen/ATen.h>

#include "gsa/config/options.h"
#include "gsa/runtime/gist_layout.h"
#include "gsa/runtime/llama_model.h"

namespace gsa {

struct SamplingOptions {
  double temperature = 0.0;         // 0 = greedy
  double top_p = 1.0;               // (0, 1]
  uint64_t seed = 0;
  int64_t max_new_tokens = 32;
  std::vector<int64_t> stop_tokens; // generation ends after emitting one of these
  int64_t vocab_limit = 0;          // > 0: ids >= vocab_limit are never produced (ModelTokenizer::text_vocab_size)
};

class Sampler {
 public:
  Sampler(const SamplingOptions& options, std::vector<int64_t> forbidden_tokens);
  // logits: [V] -> the chosen id.
  int64_t sample(const at::Tensor& logits);

 private:
  SamplingOptions options_;
  std::vector<int64_t> forbidden_;
  at::Generator generator_;
};

// Wall-clock split of one generate() call.
struct GenerationStats {
  double prefill_ms = 0;  // prefill, through the logits of the last prompt position
  double decode_ms = 0;   // sampling and decode steps after it
};

// The prefill + sample + decode loop that Generator and the distributed generator share: choose picks the next
// token from logits, step appends it and returns its logits; the loop ends after max_new_tokens, a stop token,
// or when has_room() says the cache is full. Fills stats (when given) with the prefill / decode split.
struct DecodeLoop {
  std::function<at::Tensor()> prefill;
  std::function<int64_t(const at::Tensor&)> choose;
  std::function<at::Tensor(int64_t)> step;
  std::function<bool()> has_room;
};
std::vector<int64_t> run_decode_loop(const SamplingOptions& sampling, const DecodeLoop& loop,
                                     GenerationStats* stats);

class Generator {
 public:
  // The cache holds up to capacity positions (prompt + generated).
  Generator(const LlamaModel& model, const AttentionOptions& attention, GistLayout prompt, int64_t capacity);

  at::Tensor prefill();                 // -> [V] logits of the last prompt position
  at::Tensor step(int64_t token);       // appends token, -> [V] logits of it
  const GistLayout& layout() const { return layout_; }

  // Prefill + decode loop with sampling; returns the generated ids (stop token included if hit).
  std::vector<int64_t> generate(const SamplingOptions& sampling, GenerationStats* stats = nullptr);

 private:
  at::Tensor run(int64_t q_begin, int64_t count);

  const LlamaModel& model_;
  AttentionOptions attention_;
  GistLayout layout_;
  KvCache cache_;
};

}  // namespace gsa
