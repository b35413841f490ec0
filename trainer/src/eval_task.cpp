#include "gsa/trainer/eval_task.h"

#include <cmath>
#include <functional>
#include <random>

#include "gsa/config/multi_doc_rules.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/model_tokenizer.h"
#include "gsa/trainer/synthetic_tasks.h"

namespace gsa {
namespace {

// A synthetic task (synthetic_tasks.h, through the model's tokenizer) drawn from its own generator as an eval
// task: a sample is the example's suffix without its (last) answer, and that answer; chance is the task's. The
// subclasses size the task to the length.
class SyntheticEvalTask : public EvalTask {
 public:
  EvalSample sample() override {
    Example e = task_->sample(rng_);
    EvalSample s;
    s.answer.assign(e.doc.suffix.end() - e.answer_len, e.doc.suffix.end());
    e.doc.suffix.resize(e.doc.suffix.size() - static_cast<size_t>(e.answer_len));
    s.doc = std::move(e.doc);
    return s;
  }
  double chance_accuracy() const override { return task_->chance_accuracy(); }

 protected:
  SyntheticEvalTask(const GsaOptions& options, const DataOptions& sized, uint64_t seed)
      : task_(make_synthetic_task(sized, make_model_tokenizer(options))), rng_(seed) {}

 private:
  std::unique_ptr<SyntheticTask> task_;
  std::mt19937_64 rng_;
};

// The demo's key-value retrieval (synthetic_tasks.h, through the model's tokenizer) with as many pairs as fit in
// the length: a document is "kv:" + pairs "<key>=<value>;" + "?<key>=" + the value (one token a character with
// the byte tokenizer, which the lengths assume).
class RetrievalEvalTask : public SyntheticEvalTask {
 public:
  RetrievalEvalTask(const GsaOptions& options, int64_t length, uint64_t seed)
      : RetrievalEvalTask(options, pairs_for(options.data.retrieval, length), seed) {}

  int64_t answer_length() const override { return options_.value_len; }
  std::string describe() const override { return str_cat(options_.num_pairs, " key-value pairs"); }

 private:
  RetrievalEvalTask(const GsaOptions& options, const RetrievalTaskOptions& sized, uint64_t seed)
      : SyntheticEvalTask(options, retrieval_data(sized), seed), options_(sized) {}
  static RetrievalTaskOptions pairs_for(RetrievalTaskOptions r, int64_t length) {
    const int64_t fixed = 3 + (r.key_len + 2) + r.value_len;  // "kv:", "?<key>=", the answer
    const int64_t pair = r.key_len + r.value_len + 2;
    const int64_t pairs = (length - fixed) / pair;
    GSA_CHECK(length >= fixed + pair, "eval task retrieval: length ", length, " is below ", fixed + pair,
              " raw tokens, the shortest document (one pair of data.retrieval's shape)");
    const double keys = std::pow(static_cast<double>(r.alphabet), static_cast<double>(r.key_len));
    GSA_CHECK(static_cast<double>(pairs) <= keys, "eval task retrieval: length ", length, " needs ", pairs,
              " distinct keys, but data.retrieval allows alphabet^key_len = ", keys, " (longest length: ",
              fixed + static_cast<int64_t>(keys) * pair, ")");
    r.num_pairs = pairs;
    return r;
  }
  static DataOptions retrieval_data(const RetrievalTaskOptions& r) {
    DataOptions d;
    d.source = DataSourceKind::kRetrieval;
    d.retrieval = r;
    return d;
  }

  RetrievalTaskOptions options_;
};

// Multi-document key-value retrieval (data.multi_doc's shape) with as many documents as fit in the length and
// one question (the first question of a training suffix: causal attention makes it the same prediction).
class MultiDocEvalTask : public SyntheticEvalTask {
 public:
  MultiDocEvalTask(const GsaOptions& options, int64_t length, uint64_t seed)
      : MultiDocEvalTask(options, documents_for(options.data.multi_doc, length), seed) {}

  int64_t answer_length() const override { return options_.value_len; }
  std::string describe() const override {
    return str_cat(options_.documents, " docs x ", options_.pairs_per_document, " pairs");
  }

 private:
  MultiDocEvalTask(const GsaOptions& options, const MultiDocTaskOptions& sized, uint64_t seed)
      : SyntheticEvalTask(options, multi_doc_data(sized), seed), options_(sized) {}
  // Raw tokens of a document of `documents` documents and one question (one token a character).
  static int64_t raw_tokens(const MultiDocTaskOptions& m, int64_t documents) {
    int64_t tokens = multi_doc_question_chars(m);
    for (int64_t d = 0; d < documents; ++d) tokens += multi_doc_document_chars(m, d);
    return tokens;
  }
  static MultiDocTaskOptions documents_for(MultiDocTaskOptions m, int64_t length) {
    GSA_CHECK(length >= raw_tokens(m, 1), "eval task multi_doc: length ", length, " is below ", raw_tokens(m, 1),
              " raw tokens, the shortest document (one document of data.multi_doc's shape)");
    int64_t documents = 1;
    while (raw_tokens(m, documents + 1) <= length) ++documents;
    const double keys = std::pow(static_cast<double>(m.alphabet), static_cast<double>(m.key_len));
    GSA_CHECK(static_cast<double>(documents * m.pairs_per_document) <= keys, "eval task multi_doc: length ", length,
              " needs ", documents * m.pairs_per_document, " distinct keys, but data.multi_doc allows alphabet^key_len = ",
              keys);
    m.documents = documents;
    m.min_documents = 0;  // every sample at the length
    m.questions = 1;
    return m;
  }
  static DataOptions multi_doc_data(const MultiDocTaskOptions& m) {
    DataOptions d;
    d.source = DataSourceKind::kMultiDoc;
    d.multi_doc = m;
    return retrieval_only(d);  // a sample is always a retrieval question (never a training copy example)
  }

  MultiDocTaskOptions options_;
};

using Factory = std::function<std::unique_ptr<EvalTask>(const GsaOptions&, int64_t, uint64_t)>;

const std::vector<std::pair<std::string, Factory>>& factories() {
  static const std::vector<std::pair<std::string, Factory>> table = {
      {"retrieval",
       [](const GsaOptions& o, int64_t length, uint64_t seed) -> std::unique_ptr<EvalTask> {
         return std::make_unique<RetrievalEvalTask>(o, length, seed);
       }},
      {"multi_doc",
       [](const GsaOptions& o, int64_t length, uint64_t seed) -> std::unique_ptr<EvalTask> {
         return std::make_unique<MultiDocEvalTask>(o, length, seed);
       }},
  };
  return table;
}

}  // namespace

std::unique_ptr<EvalTask> make_eval_task(const std::string& name, const GsaOptions& options, int64_t length,
                                         uint64_t seed) {
  for (const auto& [known, factory] : factories()) {
    if (known == name) return factory(options, length, seed);
  }
  std::string names;
  for (const std::string& n : eval_task_names()) names += (names.empty() ? "" : ", ") + n;
  throw Error(str_cat("unknown eval task '", name, "' (known: ", names, ")"));
}

std::vector<std::string> eval_task_names() {
  std::vector<std::string> names;
  for (const auto& entry : factories()) names.push_back(entry.first);
  return names;
}

}  // namespace gsa
