// The training data stream: numbered fixed sequences, so that the position is one integer, dp shards are
// disjoint by construction and a resume continues exactly (also with another dp x sp).
//
// Contract:
// - Sequence i of the stream is a pure function of (config, seed, i): a synthetic source draws row i's
//   data.examples_per_row examples from a generator seeded with (seed, i) (synthetic_tasks.h), or with
//   data.row_tokens > 0 draws examples until one would take the row's raw tokens past row_tokens (that one is
//   dropped; the first example always stays); a corpus source
//   (corpus.h) takes stream positions [(i mod S) * L, (i mod S + 1) * L) with L = data.corpus.sequence_length and
//   S = corpus tokens / L (whole epochs; the tail shorter than L is not used), cut into documents at the
//   corpus's document starts (each piece is a document: attention and gists never cross a boundary).
// - next_batch(global_rows, first, count): the next global batch is sequences [position, position + global_rows);
//   this caller gets rows [first, first + count) of it (dp replica d: first = d * global_rows / dp), and the
//   position advances by global_rows on every rank, so replicas read disjoint sequences and agree on the position.
// - state() is the position as text ("sequence N"); restore_state(state()) continues the same stream; any other
//   text throws gsa::Error quoting it.
// - chance_accuracy(): a synthetic task's chance of the whole answer; nullopt for a corpus (no answers: its batches
//   label every next token, task_batch.h).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <ATen/ATen.h>

#include "gsa/config/options.h"
#include "gsa/runtime/tokenizer.h"
#include "gsa/trainer/task_batch.h"

namespace gsa {

class DataSource {
 public:
  virtual ~DataSource() = default;

  TaskBatch next_batch(int64_t global_rows, int64_t first, int64_t count, at::Device device);
  std::string state() const;
  void restore_state(const std::string& state);
  int64_t position() const { return position_; }

  virtual std::optional<double> chance_accuracy() const = 0;
  // Sequences [first, first + count) of the stream.
  virtual TaskBatch sequences(int64_t first, int64_t count, at::Device device) const = 0;

 private:
  int64_t position_ = 0;
};

// The source of options.data (synthetic task or corpus) with the model's tokenizer; `seed` picks the synthetic
// stream (train and held-out use different seeds).
std::unique_ptr<DataSource> make_data_source(const GsaOptions& options, std::shared_ptr<const Tokenizer> tokenizer,
                                             uint64_t seed);

}  // namespace gsa
