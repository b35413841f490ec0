// Prefill, decode steps and sampling over a LlamaModel with a KV cache (method sections 7.2-7.3).
//
// Contract:
// - Generator::prefill runs the whole prompt layout once (selection for the suffix queries in selective
//   layers when selection is enabled), fills the cache and returns the logits of the last position.
// - Generator::step appends one raw token to the layout (RoPE position last + 1; generated tokens are never
//   gisted) and runs only that position against the cache through a DecodePlan (decode_plan.h: O(1) host work
//   per step after the first); its logits equal those of a full recompute of the whole sequence at the last
//   position (selection depends only on the query's causal prefix). Where the decode kernels run on CUDA
//   (attention.cuda_graphs, decode_step_capturable) the step after the first is captured as a CUDA graph and
//   later steps replay it until the cache grows (decode_graph.h); tokens are checked against the vocabulary on
//   the host.
// - Generator::prefill_chunk runs the next prompt positions only (chunked prefill: a long prompt is cut into
//   pieces so a server can interleave them with other requests' decode steps); the logits after the last chunk
//   equal prefill()'s.
// - The KV cache grows in blocks of kKvBlockPositions positions as the sequence grows, up to max_positions
//   (prompt + the most tokens it may generate): nothing is allocated for tokens not generated yet.
// - Sampler: temperature 0 is greedy (lowest id wins ties); otherwise softmax(logits / temperature), cut to
//   the smallest set whose probability reaches top_p (never empty: the most likely token always stays), sampled
//   from a generator seeded once. Gist ids, never_tokens and ids at or above vocab_limit (when > 0) are never
//   produced (their logits are -inf before anything else).
//   invalid_sampling() names what is wrong with a SamplingOptions (non-finite or negative temperature, top_p
//   outside (0, 1] or NaN, max_new_tokens < 1, negative vocab_limit); Sampler's constructor throws gsa::Error
//   with it.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gsa/config/options.h"
#include "gsa/runtime/decode_graph.h"
#include "gsa/runtime/decode_plan.h"
#include "gsa/runtime/gist_layout.h"
#include "gsa/runtime/llama_model.h"

namespace gsa {

struct SamplingOptions {
  double temperature = 0.0;  // 0 = greedy
  double top_p = 1.0;        // (0, 1]
  uint64_t seed = 0;
  int64_t max_new_tokens = 32;
  std::vector<int64_t> stop_tokens;   // generation ends after emitting one of these
  std::vector<int64_t> never_tokens;  // never produced either (besides gist ids), e.g. ids the tokenizer lacks
  int64_t vocab_limit = 0;            // > 0: ids >= vocab_limit are never produced (ModelTokenizer::text_vocab_size)
};

// What is wrong with the options ("temperature must be a finite number >= 0, got inf"), or "" when valid.
std::string invalid_sampling(const SamplingOptions& options);

// The KV cache's unit of growth, in positions.
inline constexpr int64_t kKvBlockPositions = 256;
// Decode steps a greedy loop that runs ahead of the host keeps queued (Generator::decode_ahead).
inline constexpr int64_t kDecodeAhead = 2;

// Positions for `prompt` + `max_new_tokens`, saturating at INT64_MAX instead of overflowing.
int64_t saturating_positions(int64_t prompt, int64_t max_new_tokens);

class Sampler {
 public:
  Sampler(const SamplingOptions& options, std::vector<int64_t> forbidden_tokens);
  // logits: [V] -> the chosen id.
  int64_t sample(const at::Tensor& logits);
  bool greedy() const { return options_.temperature == 0.0; }
  // The choices of several greedy samplers (greedy() each) for their rows [V] of one vocabulary and device, with
  // one copy to the host for all of them (a serving step with many running requests); the ids sample() gives.
  static std::vector<int64_t> sample_greedy(const std::vector<Sampler*>& samplers, const std::vector<at::Tensor>& rows);
  // The greedy choice of logits [V] without leaving the device (nothing waits for it: a CUDA graph may hold it):
  // out [2] int64 on the logits' device gets the id sample() would give and 1 if the masked row holds a NaN
  // (sample() refuses those), else 0. Only for a greedy sampler.
  void greedy_into(const at::Tensor& logits, const at::Tensor& out);

 private:
  // logits [V] -> an fp32 copy on their device with the forbidden ids and those past vocab_limit at -inf.
  at::Tensor masked(const at::Tensor& logits);
  // [F] the forbidden ids inside [0, vocab) on `device` (built once per vocabulary and device); with the ids at or
  // past id_limit(vocab), the ids never produced.
  const at::Tensor& forbidden_ids(int64_t vocab, at::Device device);
  int64_t id_limit(int64_t vocab) const;  // vocab_limit within the vocabulary

  SamplingOptions options_;
  std::vector<int64_t> forbidden_;
  at::Tensor forbidden_ids_;
  int64_t forbidden_vocab_ = -1;
  at::Tensor greedy_workspace_;  // greedy_choice's, on the device of the last greedy_into (its launches are in order)
  at::Generator generator_;
};

// Wall-clock split of one generate() call.
struct GenerationStats {
  double prefill_ms = 0;  // prefill, through the logits of the last prompt position
  double decode_ms = 0;   // sampling and decode steps after it
  // A greedy loop ahead of the host on CUDA (Generator::decode_ahead), per decode step from CUDA events: the GPU's
  // time from the step's start to its token's copy, and from the second step on the GPU's idle time before it
  // (the step's start after the previous step's end). Empty otherwise.
  std::vector<double> step_gpu_ms, step_idle_ms;
};

// The prefill + sample + decode loop that Generator and the distributed generator share: choose picks the next
// token from logits (then on_token, when set, sees it: streaming), step appends it and returns its logits; the
// loop ends after max_new_tokens, a stop token,
// or when has_room() says the cache is full. Fills stats (when given) with the prefill / decode split.
struct DecodeLoop {
  std::function<at::Tensor()> prefill;
  std::function<int64_t(const at::Tensor&)> choose;
  std::function<at::Tensor(int64_t)> step;
  std::function<bool()> has_room;
  std::function<void(int64_t)> on_token;  // optional: called with each token as soon as it is chosen
};
std::vector<int64_t> run_decode_loop(const SamplingOptions& sampling, const DecodeLoop& loop, GenerationStats* stats);

class Generator {
 public:
  // The sequence may reach max_positions (prompt + generated); the cache grows in blocks up to it.
  Generator(const LlamaModel& model, const AttentionOptions& attention, GistLayout prompt, int64_t max_positions);

  at::Tensor prefill();  // -> [V] logits of the last prompt position
  // Runs the next min(count, remaining) prompt positions; -> [V] logits of the last prompt position once the
  // prompt is complete, else an undefined tensor.
  at::Tensor prefill_chunk(int64_t count);
  int64_t prompt_remaining() const { return prompt_size_ - prefilled_; }
  at::Tensor step(int64_t token);  // appends token, -> [V] logits of it
  // step() without the forward: appends token, grows the cache and moves the decode plan (decode_step_batched
  // runs the forward of many sequences at once).
  void prepare_step(int64_t token);
  const DecodePlan& decode_plan() const;
  bool has_room() const { return layout_.size() < max_positions_; }
  int64_t cache_positions() const { return cache_.capacity(); }  // allocated, a multiple of kKvBlockPositions
  const GistLayout& layout() const { return layout_; }
  int64_t graph_captures() const { return graph_.captures(); }  // captures of the decode step (benches, tests)

  // Prefill + decode loop with sampling; returns the generated ids (stop token included if hit); on_token (when
  // set) gets each id as soon as it is chosen. A greedy loop with decode_ahead() runs ahead of the host
  // (generation_ahead.cpp): the same ids, the generator left in the same state.
  std::vector<int64_t> generate(const SamplingOptions& sampling, GenerationStats* stats = nullptr,
                                const std::function<void(int64_t)>& on_token = {});
  // Whether greedy generate() runs ahead of the host: each decode step chooses its token and moves the plan on
  // without leaving the device, so the next step is queued before the host has read this one's token (up to
  // kDecodeAhead - 1 steps past the end are computed and dropped). Off by default: on an H200 (2026-12-03,
  // `gsa bench serve`'s ahead_ms against step_ms; docs/PERFORMANCE.md) it was 1-3% a token faster than the plain
  // loop at 32K and 128K tokens, even at 1M, and 3-9% slower at 512K (its step's GPU time 0.13-0.2 ms above the
  // plain step's there, unexplained).
  bool decode_ahead() const { return decode_ahead_; }
  void set_decode_ahead(bool on) { decode_ahead_ = on; }

 private:
  friend class DecodeBatch;
  static uint64_t next_serial();
  at::Tensor run(int64_t q_begin, int64_t count);
  void reserve(int64_t positions);  // grows the cache in blocks to hold `positions`
  // generate() for a greedy sampler with decode_ahead() (generation_ahead.cpp).
  std::vector<int64_t> generate_ahead(const SamplingOptions& sampling, Sampler& sampler, GenerationStats* stats,
                                      const std::function<void(int64_t)>& on_token);

  const LlamaModel& model_;
  AttentionOptions attention_;
  GistLayout layout_;
  int64_t max_positions_;
  int64_t prompt_size_;
  int64_t prefilled_ = 0;
  KvCache cache_;
  std::unique_ptr<DecodePlan> decode_;  // from the first step on: what each step's attention reads
  bool capturable_;  // decode_step_capturable(model, attention), once: step() replays graph_
  DecodeStepGraph graph_;               // step() on CUDA: the captured step (reset when the cache grows)
  DecodeStepGraph ahead_graph_;         // generate_ahead(): step + greedy choice + plan advance (reset with graph_)
  bool decode_ahead_ = false;
  uint64_t serial_;                     // unique per Generator of the process (DecodeBatch tells them apart)
  uint64_t cache_generation_ = 0;       // bumped whenever the cache is reallocated
};

// One decode step of several sequences (one model, one attention config) in one forward: each appends its token,
// the plans stack (DecodePlan::stack) and the per-sequence caches decode together (DecodeCaches), one kernel
// launch per layer for all of them; -> each sequence's [V] logits, equal to its own step()'s. Stateless (one
// step of a fresh DecodeBatch, decode_batch.h, defined there); a caller that steps the same batch repeatedly
// keeps a DecodeBatch instead (the stacked plan advances in place, the step replays a CUDA graph).
std::vector<at::Tensor> decode_step_batched(const std::vector<Generator*>& sequences,
                                            const std::vector<int64_t>& tokens);

}  // namespace gsa
