// Synthetic key-value retrieval, the demo task: the gisted context lists (key, value) pairs, the raw suffix asks
// for one key, and the model must answer its value. Distant context is reachable only through gists and
// selection, so accuracy above chance shows the gist path works.
//
// Contract: document = context "kv:" (a 3-token preamble that the default sink covers) followed by pairs
// "<key>=<value>;" (key_len + value_len + 2 tokens each, distinct keys), suffix "?<key>=" then the value.
// Labels are -100 except at the positions whose next token is a value token (next-token targets), so the loss
// and the accuracy cover exactly the answer. All rows of a batch share one layout shape.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "gsa/config/options.h"
#include "gsa/runtime/gist_layout.h"

namespace gsa {

// The model inputs (tokens, RoPE positions) come from the attention plan built over `layouts`.
struct TaskBatch {
  std::vector<GistLayout> layouts;  // [B]
  at::Tensor labels;                // [B, T] int64, -100 = ignored; T = the longest layout
};

class RetrievalTask {
 public:
  RetrievalTask(const RetrievalTaskOptions& options, const GistOptions& gist, uint64_t seed);

  TaskBatch next_batch(int64_t batch_size, at::Device device);
  // One prompt (context + "?<key>=") and its expected answer, for generation demos.
  Document sample_prompt(std::vector<int64_t>* answer);
  // Chance accuracy of guessing the whole value: alphabet^-value_len.
  double chance_accuracy() const;
  // The generator's position as text (checkpoints); restore_state(state()) continues the same stream. A text
  // that is not such a state throws gsa::Error.
  std::string state() const;
  void restore_state(const std::string& state);

 private:
  Document sample_document(std::vector<int64_t>* answer);

  RetrievalTaskOptions options_;
  GistOptions gist_;
  std::mt19937_64 rng_;
};

// Builds a batch from documents whose last `answer_len` suffix tokens are the answer (labels on them only).
TaskBatch make_task_batch(const std::vector<Document>& docs, int64_t answer_len, const GistOptions& gist,
                          at::Device device);

}  // namespace gsa
