#include "gsa/serve/inference_engine.h"

#include "gsa/parallel/distributed_decode.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/model_tokenizer.h"

namespace gsa {

InferenceEngine::InferenceEngine(LlamaModel model, const GsaOptions& options)
    : model_(std::move(model)), options_(options), tokenizer_(make_model_tokenizer(options)),
      mode_(config_attention_mode(options)) {}

namespace {

Document request_document(std::vector<int64_t> context, std::vector<int64_t> suffix, const GistOptions& gist,
                          const Tokenizer& tokenizer) {
  Document doc;
  doc.context = std::move(context);
  if (gist.word_aware) doc.context_word_starts = tokenizer.word_starts(doc.context);
  doc.suffix = std::move(suffix);
  return doc;
}

}  // namespace

GistLayout request_layout(std::vector<int64_t> context, std::vector<int64_t> suffix, const GistOptions& gist) {
  return request_layout(std::move(context), std::move(suffix), gist, ByteTokenizer());
}

GistLayout request_layout(std::vector<int64_t> context, std::vector<int64_t> suffix, const GistOptions& gist,
                          const Tokenizer& tokenizer) {
  return build_layout({request_document(std::move(context), std::move(suffix), gist, tokenizer)}, gist, tokenizer);
}

GistLayout request_layout(std::vector<int64_t> context, std::vector<int64_t> suffix,
                          const AttentionModeOptions& mode) {
  return request_layout(std::move(context), std::move(suffix), mode, ByteTokenizer());
}

GistLayout request_layout(std::vector<int64_t> context, std::vector<int64_t> suffix,
                          const AttentionModeOptions& mode, const Tokenizer& tokenizer) {
  const Document doc = request_document(std::move(context), std::move(suffix), mode.gist, tokenizer);
  return build_layout({mode_document(doc, mode)}, mode.gist, tokenizer);
}

CompletionResult InferenceEngine::complete(const CompletionRequest& request) {
  const ModelTokenizer& tokenizer = *tokenizer_;
  const AttentionModeOptions mode = attention_mode_options(mode_, options_);
  GistLayout layout =
      request_layout(tokenizer.encode(request.context), tokenizer.encode(request.prompt), mode, tokenizer);
  GSA_CHECK(layout.size() > 0, "empty request: no context and no prompt");

  SamplingOptions sampling = request.sampling;
  if (tokenizer.eos_id()) sampling.stop_tokens.push_back(*tokenizer.eos_id());
  tokenizer.limit_sampling(&sampling);
  CompletionResult result;
  result.prompt_tokens = layout.size();
  const int64_t capacity = saturating_positions(result.prompt_tokens, sampling.max_new_tokens);
  GenerationStats stats;
  std::function<void(int64_t)> on_token;
  if (request.on_text) {
    on_token = [&](int64_t token) {
      if (token != tokenizer.eos_id()) request.on_text(tokenizer.decode({token}));
    };
  }
  if (sp_ != nullptr && sp_->size() > 1) {
    GSA_CHECK(result.prompt_tokens >= sp_->size(), "the prompt has ", result.prompt_tokens,
              " positions (gists included), fewer than the ", sp_->size(),
              " ranks it is cut over: give a longer context or fewer ranks (--sp)");
    const SequenceShards shards = shard_at_sections({layout}, sp_->size());
    DistributedGenerator generator(model_, mode.attention, std::move(layout), shards, capacity, *sp_);
    result.tokens = generator.generate(sampling, &stats, on_token);
  } else {
    Generator generator(model_, mode.attention, std::move(layout), capacity);
    result.tokens = generator.generate(sampling, &stats, on_token);
  }
  result.prefill_ms = stats.prefill_ms;
  if (!result.tokens.empty() && result.tokens.back() == tokenizer.eos_id()) result.tokens.pop_back();
  result.decode_ms_per_token = result.tokens.empty() ? 0 : stats.decode_ms / result.tokens.size();
  result.text = tokenizer.decode(result.tokens);
  return result;
}

}  // namespace gsa
