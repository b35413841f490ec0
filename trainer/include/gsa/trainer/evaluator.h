// `gsa eval`'s measurement: answer loss and retrieval accuracy of one model on held-out task samples
// (eval_task.h) at several document lengths, in several attention modes (runtime/attention_mode.h), on one
// process or sequence-parallel over the ranks of an sp group.
//
// Contract:
// - For each length L the samples come from make_eval_task(task, options, L, eval_seed(seed, L)); every mode
//   scores the same samples. A sample is laid out by its mode (mode_document, the mode's gist options), the
//   answer appended to the suffix, and run teacher-forced in batches of batch_size (rows padded to the longest).
// - loss = mean next-token cross-entropy (nats) over every answer token of every sample; accuracy = fraction of
//   samples whose every answer token is the argmax of its logits (sp_model.h's, as in training: one process is a
//   group of one). Both are exact sums over samples, so they do not depend on batch_size or on the number of
//   ranks beyond float rounding.
// - With an sp communicator (every rank of it calls with the same arguments), each batch's rows are cut over the
//   ranks at top-level sections (sp_model.h); every rank returns the same report. dp is 1: each rank runs
//   every sample.
// - Runs under at::NoGradGuard; the model is not changed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gsa/config/options.h"
#include "gsa/parallel/communicator.h"
#include "gsa/runtime/attention_mode.h"
#include "gsa/runtime/llama_model.h"
#include "gsa/trainer/eval_task.h"

namespace gsa {

struct EvalSettings {
  std::string task = "retrieval";
  std::vector<int64_t> lengths;      // raw tokens per document (context + question + answer), each >= 1
  int64_t samples = 64;              // per length, >= 1
  std::vector<AttentionMode> modes;  // non-empty
  uint64_t seed = 0;
  int64_t batch_size = 8;            // >= 1 samples per forward
};

// Sums over samples, so that batches (and ranks) add up.
struct ScoreSums {
  double loss_sum = 0;        // cross-entropy summed over answer tokens
  int64_t answer_tokens = 0;
  int64_t correct = 0;        // samples with the whole answer right
  int64_t samples = 0;
  int64_t positions = 0;      // layout positions (gists included) summed over samples
};

struct ModeScore {
  AttentionMode mode = AttentionMode::kSelective;
  double loss = 0;
  double accuracy = 0;
  double mean_positions = 0;  // per sample, gists included
  double seconds = 0;
};

struct LengthResult {
  int64_t length = 0;          // requested raw tokens
  double mean_raw_tokens = 0;  // per sample, what the task drew
  std::string description;     // EvalTask::describe()
  std::vector<ModeScore> modes;  // in EvalSettings::modes order
};

struct EvalReport {
  std::string task;
  int64_t samples = 0;
  uint64_t seed = 0;
  double chance_accuracy = 0;
  std::vector<LengthResult> lengths;
};

// The task seed of length L (a splitmix64 mix of seed and L).
uint64_t eval_seed(uint64_t seed, int64_t length);

// Scores `samples` in `mode`. sp: nullptr = this process alone.
ScoreSums score_samples(const LlamaModel& model, const GsaOptions& options, AttentionMode mode,
                        const std::vector<EvalSample>& samples, int64_t batch_size, Communicator* sp = nullptr);

EvalReport run_eval(const LlamaModel& model, const GsaOptions& options, const EvalSettings& settings,
                    Communicator* sp = nullptr);

}  // namespace gsa
