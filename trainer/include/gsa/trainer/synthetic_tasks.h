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
//   documents), with pair_width > 0 the header and each pair padded with spaces to pair_width characters; the
//   suffix asks `questions` distinct keys, each of a random document (the others are distractors):
//   "?<key>=<value>" for each, joined by ";". The last value is the example's answer, the earlier ones its
//   earlier_answers (task_batch.h), so every answer is labelled. One question is the single-question task.
//   With min_documents > 0 each example first draws its number of documents uniformly in [min_documents,
//   documents]; with upper_case_values the values are upper-case letters (keys stay lower-case); with compact
//   the pairs are "<key><value>;" and the questions "?<key>" (no '=').
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
