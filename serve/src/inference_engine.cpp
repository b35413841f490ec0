#include "gsa/serve/inference_engine.h"

#include "gsa/parallel/distributed_decode.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/model_tokenizer.h"

namespace gsa {

InferenceEngine::InferenceEngine(LlamaModel model, const GsaOptions& options)
    : model_(std::move(model)), options_(options), tokenizer_(make_model_tokenizer(options)) {}

CompletionResult InferenceEngine::complete(const CompletionRequest& request) {
  const ModelTokenizer& tokenizer = *tokenizer_;
  Document doc;
  doc.context = tokenizer.encode(request.context);
  if (options_.gist.word_aware) doc.context_word_starts = tokenizer.word_starts(doc.context);
  doc.suffix = tokenizer.encode(request.prompt);
  GistLayout layout = build_layout({doc}, options_.gist, tokenizer);
  GSA_CHECK(layout.size() > 0, "empty request: no context and no prompt");

  SamplingOptions sampling = request.sampling;
  if (tokenizer.eos_id()) sampling.stop_tokens.push_back(*tokenizer.eos_id());
  sampling.vocab_limit = tokenizer.text_vocab_size();
  CompletionResult result;
  result.prompt_tokens = layout.size();
  const int64_t capacity = result.prompt_tokens + sampling.max_new_tokens;
  GenerationStats stats;
  if (sp_ != nullptr && sp_->size() > 1) {
    const SequenceShards shards = shard_at_sections({layout}, sp_->size());
    DistributedGenerator generator(model_, options_.attention, std::move(layout), shards, capacity, *sp_);
    result.tokens = generator.generate(sampling, &stats);
  } else {
    Generator generator(model_, options_.attention, std::move(layout), capacity);
    result.tokens = generator.generate(sampling, &stats);
  }
  result.prefill_ms = stats.prefill_ms;
  if (!result.tokens.empty() && result.tokens.back() == tokenizer.eos_id()) result.tokens.pop_back();
  result.decode_ms_per_token = result.tokens.empty() ? 0 : stats.decode_ms / result.tokens.size();
  result.text = tokenizer.decode(result.tokens);
  return result;
}

}  // namespace gsa
