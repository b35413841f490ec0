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
//   the pairs are "<key><value>;" and the questions "?<key>" (no '='). Keys are drawn from the first `alphabet`
//   of a-z then A-Z; with digit_values the values are digits. With packed_pairs a document's pairs are
//   "<key><value>" back to back ("a7b3c9"), the block padded with spaces to a multiple of pair_width; `filler`
//   '.' characters end each document (header, pairs, filler: multi_doc_document_chars of multi_doc_rules.h).
//   With copy_fraction > 0 an example is first, with that probability, a copy example instead: L uniform in
//   [copy_min_length, copy_max_length] key symbols S, then "|" + S; the suffix is S + "|" + S with an empty
//   context, or with copy_in_context the context is S and the suffix "|" + S. Its answer is the copied S but its
//   first token (answer_len = tokens of S - 1; all of S if S is one token). With copy_fraction 0 no draw is
//   made, so a stream equals that of the same options without the copy fields.
//   The options must satisfy multi_doc_problems (multi_doc_rules.h), else gsa::Error with its message.
// - chance_accuracy(): the probability of guessing the whole (retrieval) answer: alphabet^-value_len,
//   10^-value_len with digit_values, 10^-digits for the passkey.
// - retrieval_only(data): data without auxiliary training examples (data.multi_doc.copy_fraction = 0): what
//   held-out scoring, gsa eval and the after-training samples draw.
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

DataOptions retrieval_only(DataOptions data);

}  // namespace gsa
