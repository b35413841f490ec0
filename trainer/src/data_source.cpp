#include "gsa/trainer/data_source.h"

#include <random>
#include <sstream>

#include "gsa/runtime/error.h"
#include "gsa/trainer/corpus.h"
#include "gsa/trainer/synthetic_tasks.h"

namespace gsa {
namespace {

class SyntheticSource final : public DataSource {
 public:
  SyntheticSource(const GsaOptions& options, std::shared_ptr<const Tokenizer> tokenizer, uint64_t seed)
      : gist_(options.gist), examples_per_row_(options.data.examples_per_row), row_tokens_(options.data.row_tokens),
        tokenizer_(tokenizer),
        task_(make_synthetic_task(options.data, tokenizer)), seed_(seed) {}

  std::optional<double> chance_accuracy() const override { return task_->chance_accuracy(); }
  TaskBatch sequences(int64_t first, int64_t count, at::Device device) const override {
    std::vector<std::vector<Example>> rows;
    for (int64_t i = first; i < first + count; ++i) {
      const auto index = static_cast<uint64_t>(i);
      std::seed_seq seq{static_cast<uint32_t>(seed_), static_cast<uint32_t>(seed_ >> 32),
                        static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32)};
      std::mt19937_64 rng(seq);
      std::vector<Example> row;
      if (row_tokens_ == 0) {
        for (int64_t e = 0; e < examples_per_row_; ++e) row.push_back(task_->sample(rng));
      } else {  // pack while the row's raw tokens fit; the first example that does not is dropped
        int64_t tokens = 0;
        for (;;) {
          Example e = task_->sample(rng);
          const auto size = static_cast<int64_t>(e.doc.context.size() + e.doc.suffix.size());
          if (!row.empty() && tokens + size > row_tokens_) break;
          tokens += size;
          row.push_back(std::move(e));
        }
      }
      rows.push_back(std::move(row));
    }
    return make_answer_batch(std::move(rows), gist_, *tokenizer_, device);
  }

 private:
  GistOptions gist_;
  int64_t examples_per_row_;
  int64_t row_tokens_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::unique_ptr<SyntheticTask> task_;
  uint64_t seed_;
};

class CorpusSource final : public DataSource {
 public:
  CorpusSource(const GsaOptions& options, std::shared_ptr<const Tokenizer> tokenizer)
      : gist_(options.gist), length_(options.data.corpus.sequence_length), tokenizer_(tokenizer),
        corpus_(load_corpus(options.data, *tokenizer, options.model.vocab_size)) {
    GSA_CHECK(corpus_->size() >= length_, corpus_->path(), ": ", corpus_->size(),
              " tokens, fewer than one sequence (data.corpus.sequence_length = ", length_, ")");
  }

  std::optional<double> chance_accuracy() const override { return std::nullopt; }
  TaskBatch sequences(int64_t first, int64_t count, at::Device device) const override {
    const int64_t per_epoch = corpus_->size() / length_;
    std::vector<std::vector<Document>> rows;
    std::vector<int64_t> ids, starts;
    for (int64_t i = first; i < first + count; ++i) {
      const int64_t begin = (i % per_epoch) * length_;
      corpus_->read(begin, length_, &ids, &starts);
      starts.push_back(begin + length_);
      std::vector<Document> docs;
      int64_t from = begin;
      for (int64_t end : starts) {
        Document d;
        d.context.assign(ids.begin() + (from - begin), ids.begin() + (end - begin));
        docs.push_back(std::move(d));
        from = end;
      }
      rows.push_back(std::move(docs));
    }
    return make_lm_batch(std::move(rows), gist_, *tokenizer_, device);
  }

 private:
  GistOptions gist_;
  int64_t length_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::unique_ptr<TokenCorpus> corpus_;
};

}  // namespace

TaskBatch DataSource::next_batch(int64_t global_rows, int64_t first, int64_t count, at::Device device) {
  GSA_CHECK(first >= 0 && count >= 1 && first + count <= global_rows, "rows [", first, ", ", first + count,
            ") are outside the global batch of ", global_rows);
  TaskBatch batch = sequences(position_ + first, count, device);
  position_ += global_rows;
  return batch;
}

std::string DataSource::state() const { return str_cat("sequence ", position_); }

void DataSource::restore_state(const std::string& state) {
  std::istringstream in(state);
  std::string word, rest;
  int64_t position = -1;
  in >> word >> position;
  GSA_CHECK(word == "sequence" && !in.fail() && position >= 0 && !(in >> rest), "data source: '",
            state.substr(0, 60), "' is not a saved data position (expected \"sequence N\")");
  position_ = position;
}

std::unique_ptr<DataSource> make_data_source(const GsaOptions& options, std::shared_ptr<const Tokenizer> tokenizer,
                                             uint64_t seed) {
  switch (options.data.source) {
    case DataSourceKind::kRetrieval:
    case DataSourceKind::kPasskey:
    case DataSourceKind::kMultiDoc:
      return std::make_unique<SyntheticSource>(options, std::move(tokenizer), seed);
    default:
      return std::make_unique<CorpusSource>(options, std::move(tokenizer));
  }
}

}  // namespace gsa
