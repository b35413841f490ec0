#include "gsa/runtime/model_tokenizer.h"

#include "gsa/runtime/error.h"
#include "gsa/runtime/hf_tokenizer.h"

namespace gsa {

ModelTokenizer::ModelTokenizer(std::shared_ptr<const Tokenizer> text, const ModelOptions& model, int64_t gist_levels)
    : text_(std::move(text)), vocab_size_(model.vocab_size), first_gist_(model.first_gist_id), levels_(gist_levels) {
  GSA_CHECK(levels_ >= 1 && first_gist_ >= 0 && first_gist_ + levels_ <= vocab_size_, "gist ids ", first_gist_, "..",
            first_gist_ + levels_ - 1, " (model.first_gist_id, gist.levels) do not fit in model.vocab_size = ",
            vocab_size_);
  GSA_CHECK(text_->vocab_size() <= vocab_size_, "the tokenizer has ", text_->vocab_size(),
            " ids, more than model.vocab_size = ", vocab_size_);
  for (int64_t l = 0; l < levels_; ++l) {
    const int64_t id = first_gist_ + l;
    if (id >= text_->vocab_size()) continue;  // after the text's ids: the model's own rows
    GSA_CHECK(l < text_->max_gist_levels() && text_->gist_id(l) == id, "model.first_gist_id = ", first_gist_,
              " puts the level-", l, " gist at id ", id, ", inside the tokenizer's vocabulary, where it is ",
              l < text_->max_gist_levels() ? str_cat("not its gist (the tokenizer's level-", l, " gist is ",
                                                     text_->gist_id(l), ")")
                                           : std::string("a text token"));
  }
}

int64_t ModelTokenizer::gist_id_impl(int64_t level) const {
  GSA_CHECK(level >= 0 && level < levels_, "gist level ", level, " is outside 0..", levels_ - 1);
  return first_gist_ + level;
}

std::vector<int64_t> ModelTokenizer::gist_ids() const {
  std::vector<int64_t> ids;
  for (int64_t l = 0; l < levels_; ++l) ids.push_back(first_gist_ + l);
  return ids;
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
      text += str_cat("<gist", id - first_gist_, ">");
    } else if (id >= 0 && id < text_->vocab_size()) {
      run.push_back(id);
    } else {
      throw Error(str_cat("decode: id ", id, " at position ", i, " is neither a text token (the tokenizer has ids 0..",
                          text_->vocab_size() - 1, ") nor a gist (", first_gist_, "..", first_gist_ + levels_ - 1,
                          ")"));
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
