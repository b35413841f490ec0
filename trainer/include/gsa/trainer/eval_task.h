// Held-out tasks for `gsa eval`, chosen by name: each draws documents of about a requested length whose answer
// the model must produce, from its own seed (disjoint from the training streams, which use train.seed + 1).
//
// Contract:
// - An EvalSample's doc has the gisted context and the raw question as suffix; `answer` is NOT in doc.suffix
//   (the evaluator appends it and scores exactly those tokens, next-token targets, teacher-forced).
// - make_eval_task(name, options, length, seed) builds the task `name` (eval_task_names() lists them) for
//   documents of at most `length` raw tokens (context + question + answer, gists not counted), shaped by the
//   config's data section; the same (name, options, length, seed) gives the same samples. A length the task
//   cannot fill (too short for one item, or needing more distinct keys than the config's alphabet allows)
//   throws gsa::Error naming the length and the limit; an unknown name throws naming the known ones.
// - Every sample of one task has answer_length() answer tokens.
//
// Adding a task: implement EvalTask and add its factory to the table in eval_task.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gsa/config/options.h"
#include "gsa/runtime/gist_layout.h"

namespace gsa {

struct EvalSample {
  Document doc;                 // context (gisted) + question (raw suffix), without the answer
  std::vector<int64_t> answer;  // [answer_length()]
};

class EvalTask {
 public:
  virtual ~EvalTask() = default;
  virtual EvalSample sample() = 0;
  virtual int64_t answer_length() const = 0;
  // Accuracy of guessing the whole answer uniformly at random.
  virtual double chance_accuracy() const = 0;
  // What a sample holds, e.g. "84 key-value pairs".
  virtual std::string describe() const = 0;
};

std::unique_ptr<EvalTask> make_eval_task(const std::string& name, const GsaOptions& options, int64_t length,
                                         uint64_t seed);
std::vector<std::string> eval_task_names();

}  // namespace gsa
