// The batch the trainer feeds the model: packed rows of documents (gist layouts) and next-token labels.
//
// Contract:
// - make_answer_batch: each row packs its examples as separate documents (no attention across them, each with
//   its own gists); the labels are -100 except at the positions whose next token is an answer token, so loss and
//   whole-answer accuracy cover exactly the answers. An example's answers are its last answer_len suffix tokens
//   and, with several questions in one suffix, the earlier_answers spans before them. Spans out of the suffix,
//   empty, overlapping or out of order, or starting at the first position of their document (nothing before it
//   to predict it) throw gsa::Error.
// - make_lm_batch (corpora): label at position t is the token at t + 1 when both are in the same document and
//   t + 1 is a raw token; positions before a gist and the last position of a document are -100. So every raw
//   token but the first of a document is predicted exactly once, by the position right before it (a gist
//   position predicts the raw token after it). The method leaves the CPT labelling rule open (gsa-method.md
//   section 3); this is the shifted-labels rule of the Hugging Face loss with gists masked.
// - With gist.word_aware the contexts' word starts come from the tokenizer. Rows are padded to the longest;
//   labels [B, T] live on `device`.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

#include "gsa/config/options.h"
#include "gsa/runtime/gist_layout.h"
#include "gsa/runtime/tokenizer.h"

namespace gsa {

struct TaskBatch {
  std::vector<GistLayout> layouts;  // [B]
  at::Tensor labels;                // [B, T] int64, -100 = ignored; T = the longest layout
};

// Suffix indices [begin, end) of one answer.
struct AnswerSpan {
  int64_t begin = 0;
  int64_t end = 0;
};

// One synthetic example: the gisted context, then the raw suffix = question(s) and answer(s).
struct Example {
  Document doc;
  int64_t answer_len = 0;                 // the last answer_len suffix tokens are the (last) answer
  std::vector<AnswerSpan> earlier_answers;  // answers to earlier questions of the suffix, in order; may be empty
};

// rows[b] = the examples packed into row b.
TaskBatch make_answer_batch(std::vector<std::vector<Example>> rows, const GistOptions& gist,
                            const Tokenizer& tokenizer, at::Device device);

// rows[b] = the documents of row b (contexts only: gists all along, no suffix).
TaskBatch make_lm_batch(std::vector<std::vector<Document>> rows, const GistOptions& gist, const Tokenizer& tokenizer,
                        at::Device device);

}  // namespace gsa
