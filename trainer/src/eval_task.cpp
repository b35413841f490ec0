#include "gsa/trainer/eval_task.h"

#include <cmath>
#include <functional>
#include <random>

#include "gsa/runtime/error.h"
#include "gsa/runtime/model_tokenizer.h"
#include "gsa/trainer/synthetic_tasks.h"

namespace gsa {
namespace {

// The demo's key-value retrieval (synthetic_tasks.h, through the model's tokenizer) with as many pairs as fit in
// the length: a document is "kv:" + pairs "<key>=<value>;" + "?<key>=" + the value (one token a character with
// the byte tokenizer, which the lengths assume).
class RetrievalEvalTask : public EvalTask {
 public:
  RetrievalEvalTask(const GsaOptions& options, int64_t length, uint64_t seed)
      : options_(pairs_for(options.data.retrieval, length)),
        task_(make_synthetic_task(retrieval_data(options_), make_model_tokenizer(options))), rng_(seed) {}

  EvalSample sample() override {
    Example e = task_->sample(rng_);
    EvalSample s;
    s.answer.assign(e.doc.suffix.end() - e.answer_len, e.doc.suffix.end());
    e.doc.suffix.resize(e.doc.suffix.size() - static_cast<size_t>(e.answer_len));
    s.doc = std::move(e.doc);
    return s;
  }
  int64_t answer_length() const override { return options_.value_len; }
  double chance_accuracy() const override { return task_->chance_accuracy(); }
  std::string describe() const override { return str_cat(options_.num_pairs, " key-value pairs"); }

 private:
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
  std::unique_ptr<SyntheticTask> task_;
  std::mt19937_64 rng_;
};

using Factory = std::function<std::unique_ptr<EvalTask>(const GsaOptions&, int64_t, uint64_t)>;

const std::vector<std::pair<std::string, Factory>>& factories() {
  static const std::vector<std::pair<std::string, Factory>> table = {
      {"retrieval",
       [](const GsaOptions& o, int64_t length, uint64_t seed) -> std::unique_ptr<EvalTask> {
         return std::make_unique<RetrievalEvalTask>(o, length, seed);
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
