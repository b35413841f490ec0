#include "gsa/runtime/model_tokenizer.h"

#include <algorithm>

#include "gsa/runtime/error.h"
#include "gsa/runtime/generation.h"
#include "gsa/runtime/hf_tokenizer.h"

namespace gsa {

ModelTokenizer::ModelTokenizer(std::shared_ptr<const Tokenizer> text, const ModelOptions& model, int64_t gist_levels)
    : text_(std::move(text)), vocab_size_(model.vocab_size) {
  GSA_CHECK(gist_levels >= 1, "gist levels must be >= 1, got ", gist_levels);
  GSA_CHECK(text_->vocab_size() <= vocab_size_, "the tokenizer has ", text_->vocab_size(),
            " ids, more than model.vocab_size = ", vocab_size_);
  GSA_CHECK(model.gist_token_ids.empty() || static_cast<int64_t>(model.gist_token_ids.size()) >= gist_levels,
            "model.gist_token_ids has ", model.gist_token_ids.size(), " ids, gist.levels = ", gist_levels);
  for (int64_t l = 0; l < gist_levels; ++l) {
    const int64_t id = model.gist_token_ids.empty() ? ByteTokenizer::gist_id(l)
                                                    : model.gist_token_ids[static_cast<size_t>(l)];
    GSA_CHECK(id >= 0 && id < vocab_size_, "the level-", l, " gist id ", id, " is outside model.vocab_size = ",
              vocab_size_);
    gists_.push_back(id);
  }
  for (int64_t l = 0; l < gist_levels; ++l) {
    const int64_t id = gists_[static_cast<size_t>(l)];
    if (id >= text_->vocab_size()) continue;  // after the text's ids: the model's own rows
    GSA_CHECK(l < text_->max_gist_levels() && text_->gist_id(l) == id, "the model's level-", l, " gist id ", id,
              " (model.gist_token_ids) is inside the tokenizer's vocabulary, where it is ",
              l < text_->max_gist_levels() ? str_cat("not its gist (the tokenizer's level-", l, " gist is ",
                                                     text_->gist_id(l), ")")
                                           : std::string("a text token"));
  }
}

int64_t ModelTokenizer::gist_level(int64_t id) const {
  for (size_t l = 0; l < gists_.size(); ++l) {
    if (gists_[l] == id) return static_cast<int64_t>(l);
  }
  return -1;
}

int64_t ModelTokenizer::gist_id_impl(int64_t level) const {
  GSA_CHECK(level >= 0 && level < max_gist_levels(), "gist level ", level, " is outside 0..", max_gist_levels() - 1);
  return gists_[static_cast<size_t>(level)];
}

std::vector<int64_t> ModelTokenizer::gist_ids() const { return gists_; }

void ModelTokenizer::limit_sampling(SamplingOptions* options) const {
  options->vocab_limit = text_->vocab_size();
  std::vector<int64_t>& never = options->never_tokens;
  std::vector<int64_t> gists = gists_;
  for (int64_t l = 0; l < text_->max_gist_levels(); ++l) gists.push_back(text_->gist_id(l));
  for (int64_t id : gists) {
    if (std::find(never.begin(), never.end(), id) == never.end()) never.push_back(id);
  }
}

std::string ModelTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string text;
  std::vector<int64_t> run;  // consecutive text ids, decoded together (multi-byte characters span tokens)
  auto flush = [&] {
    if (!run.empty()) text += text_->decode(run);
    run.clear();
  };
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t id = ids[i];
    if (is_gist(id)) {
      flush();
      text += str_cat("<gist", gist_level(id), ">");
    } else if (id >= 0 && id < text_->vocab_size()) {
      run.push_back(id);
    } else {
      throw Error(str_cat("decode: id ", id, " at position ", i, " is neither a text token (the tokenizer has ids 0..",
                          text_->vocab_size() - 1, ") nor a gist of the model"));
    }
  }
  flush();
  return text;
}

std::vector<uint8_t> ModelTokenizer::word_starts(const std::vector<int64_t>& ids) const {
  std::vector<uint8_t> starts(ids.size(), 1);
  std::vector<int64_t> text_ids;
  std::vector<size_t> where;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (is_gist(ids[i])) continue;
    text_ids.push_back(ids[i]);
    where.push_back(i);
  }
  const std::vector<uint8_t> text_starts = text_->word_starts(text_ids);
  for (size_t j = 0; j < where.size(); ++j) starts[where[j]] = text_starts[j];
  return starts;
}

std::shared_ptr<const ModelTokenizer> make_model_tokenizer(const GsaOptions& options) {
  std::shared_ptr<const Tokenizer> text;
  if (options.data.tokenizer.empty()) {
    text = std::make_shared<ByteTokenizer>();
  } else {
    HfTokenizerOptions hf;
    hf.gist_levels = std::max<int64_t>(3, options.gist.levels);
    text = std::make_shared<HfTokenizer>(options.data.tokenizer, hf);
  }
  return std::make_shared<ModelTokenizer>(std::move(text), options.model, options.gist.levels);
}

}  // namespace gsa
