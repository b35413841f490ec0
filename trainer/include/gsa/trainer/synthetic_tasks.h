// Synthetic long-context tasks drawn from a random generator, written as text and tokenised by the model's
// tokenizer (so they work with any vocabulary). Each example is a gisted context and a raw suffix (question +
// answer); far context is reachable only through gists and selection, so answer accuracy above chance shows the
// gist path works.
//
// Contract (the same generator state gives the same example):
// - retrieval: context "kv:" then num_pairs pairs "<key>=<value>;" (distinct keys); suffix "?<key>=" + value.
// - passkey: filler_sentences sentences drawn from a fixed list, with "The pass key is <digits>. Remember it. "
//   at a random sentence boundary; suffix "What is the pass key? The pass key is " + the digits.
// - multi_doc: `documents` documents "#<d>|" + pairs_per_document pairs "<key>=<value>;" (keys distinct over all
//   documents); the suffix "?<key>=" asks for a key of one random document (the others are distractors), then
//   its value.
// - chance_accuracy(): the probability of guessing the whole answer (alphabet^-value_len, 10^-digits).
#pragma once

#include <cstdint>
#include <memory>
#include <random>

#include "gsa/config/options.h"
#include "gsa/runtime/tokenizer.h"
#include "gsa/trainer/task_batch.h"

namespace gsa {

class SyntheticTask {
 public:
  virtual ~SyntheticTask() = default;
  virtual Example sample(std::mt19937_64& rng) const = 0;
  virtual double chance_accuracy() const = 0;
};

// The task of data.source (kRetrieval, kPasskey or kMultiDoc); throws gsa::Error for a corpus source or options
// that cannot give distinct keys.
std::unique_ptr<SyntheticTask> make_synthetic_task(const DataOptions& data, std::shared_ptr<const Tokenizer> tokenizer);

}  // namespace gsa
