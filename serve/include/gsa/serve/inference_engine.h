// Text completion on one device, or on an sp group of ranks (distributed decode: the prompt's KV cache stays
// sharded, parallel/distributed_decode.h); the HTTP API builds on it.
//
// Contract: complete() tokenizes `context` with the model's tokenizer (model_tokenizer.h: data.tokenizer and the
// model config's gist ids) and gists it (word-aware when the config asks for it), appends `prompt` raw as the
// suffix, prefills once and decodes up to max_new_tokens with the request's sampling (gist ids and ids the
// tokenizer cannot decode are never produced; stops after the tokenizer's EOS or a stop token). Returns the
// generated text and timings. The attention mode (runtime/attention_mode.h; default: the config's, selective
// when selection is enabled, else gist) decides the layout and the attention: full lays the context out raw,
// with no gists. Not thread-safe: one request at a time. With an sp group (use_sequence_parallel), every rank of
// the group must call complete() with the same request; every rank returns the same result.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gsa/config/options.h"
#include "gsa/parallel/communicator.h"
#include "gsa/runtime/attention_mode.h"
#include "gsa/runtime/generation.h"
#include "gsa/runtime/llama_model.h"
#include "gsa/runtime/model_tokenizer.h"

namespace gsa {

// The layout of one request: the context gisted (word-aware when the options ask for it), the suffix raw. The
// engine and the server build every prompt with it, so their completions equal `gsa generate`'s.
GistLayout request_layout(std::vector<int64_t> context, std::vector<int64_t> suffix, const GistOptions& gist);
GistLayout request_layout(std::vector<int64_t> context, std::vector<int64_t> suffix, const GistOptions& gist,
                          const Tokenizer& tokenizer);
// The same in an attention mode (runtime/attention_mode.h: full mode inserts no gists).
GistLayout request_layout(std::vector<int64_t> context, std::vector<int64_t> suffix,
                          const AttentionModeOptions& mode);
// The same with the gist ids and word starts of `tokenizer` (the engine's model tokenizer); the overloads above use
// the byte tokenizer's (the server's).
GistLayout request_layout(std::vector<int64_t> context, std::vector<int64_t> suffix,
                          const AttentionModeOptions& mode, const Tokenizer& tokenizer);

struct CompletionRequest {
  std::string context;       // gisted
  std::string prompt;        // raw suffix (question)
  SamplingOptions sampling;
  std::function<void(const std::string&)> on_text;  // optional: each generated token's bytes as it comes (not <eos>)
};

struct CompletionResult {
  std::string text;
  std::vector<int64_t> tokens;
  int64_t prompt_tokens = 0;  // layout size, gists included
  double prefill_ms = 0;
  double decode_ms_per_token = 0;
};

class InferenceEngine {
 public:
  InferenceEngine(LlamaModel model, const GsaOptions& options);
  CompletionResult complete(const CompletionRequest& request);
  // Serve with the prompt cut over the ranks of `sp` (the communicator must outlive the engine).
  void use_sequence_parallel(Communicator* sp) { sp_ = sp; }
  void set_attention_mode(AttentionMode mode) { mode_ = mode; }
  const LlamaModel& model() const { return model_; }

 private:
  LlamaModel model_;
  GsaOptions options_;
  std::shared_ptr<const ModelTokenizer> tokenizer_;
  Communicator* sp_ = nullptr;
  AttentionMode mode_;
};

}  // namespace gsa
