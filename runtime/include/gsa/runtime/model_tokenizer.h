// ModelTokenizer: the tokenizer a model trains and serves with: a text tokenizer (the byte tokenizer, or a
// Hugging Face tokenizer.json) for text, and the gist ids of the model config (model.gist_token_ids; empty: the
// byte tokenizer's).
// Every component that turns text into model inputs or ids back into text (trainer, tasks, inference engine,
// build_layout) goes through it, so nothing assumes the byte tokenizer's ids.
//
// Contract (on top of tokenizer.h):
// - encode / bos_id / eos_id are the text tokenizer's; max_gist_levels() is gist.levels; gist_id(l) is
//   model.gist_token_ids[l] (ByteTokenizer::gist_id(l) when the list is empty); vocab_size() is model.vocab_size.
// - text_vocab_size() is the text tokenizer's vocabulary: ids below it decode as text, the model's gist ids as
//   "<gist0>".."<gist3>"; any other id (a spare row of the embedding) throws gsa::Error naming it.
// - limit_sampling(options) is what every generating caller applies: ids at or past text_vocab_size() (spare rows)
//   and every gist id, the model's and each one the text tokenizer reserves (the byte tokenizer reserves four
//   levels; a one-level model leaves three of them unused, and they would decode as "<gist1>".."<gist3>"), are
//   never produced (SamplingOptions::vocab_limit and never_tokens).
// - Construction throws gsa::Error when the text tokenizer's ids do not fit the model (text vocab > model vocab),
//   a gist id is outside the model's vocabulary, or a gist id falls inside the text vocabulary but is not the text
//   tokenizer's own gist of the same level (a tokenizer.json whose <gist> got another id than the config says).
// - word_starts: the text tokenizer's rule; gist ids count as word starts.
// make_model_tokenizer(options) loads data.tokenizer (empty: the byte tokenizer) with options.gist.levels.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gsa/config/options.h"
#include "gsa/runtime/tokenizer.h"

namespace gsa {

struct SamplingOptions;  // generation.h

class ModelTokenizer final : public Tokenizer {
 public:
  ModelTokenizer(std::shared_ptr<const Tokenizer> text, const ModelOptions& model, int64_t gist_levels);

  std::vector<int64_t> encode(std::string_view text) const override { return text_->encode(text); }
  std::string decode(const std::vector<int64_t>& ids) const override;
  std::vector<uint8_t> word_starts(const std::vector<int64_t>& ids) const override;
  std::optional<int64_t> bos_id() const override { return text_->bos_id(); }
  std::optional<int64_t> eos_id() const override { return text_->eos_id(); }
  int64_t max_gist_levels() const override { return static_cast<int64_t>(gists_.size()); }

  int64_t text_vocab_size() const { return text_->vocab_size(); }
  std::vector<int64_t> gist_ids() const;  // [levels] the id of each level's gist
  void limit_sampling(SamplingOptions* options) const;

 private:
  int64_t vocab_size_impl() const override { return vocab_size_; }
  int64_t gist_id_impl(int64_t level) const override;
  bool is_gist_impl(int64_t id) const override { return gist_level(id) >= 0; }
  int64_t gist_level(int64_t id) const;  // -1: not a gist

  std::shared_ptr<const Tokenizer> text_;
  int64_t vocab_size_;
  std::vector<int64_t> gists_;  // [levels]
};

std::shared_ptr<const ModelTokenizer> make_model_tokenizer(const GsaOptions& options);

}  // namespace gsa
