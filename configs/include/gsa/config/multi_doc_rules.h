// The cross-field rules of data.multi_doc and the lengths of its text, in one place for their three readers:
// validate.cpp (at load, with the fields' file:line), the multi_doc task (trainer/synthetic_tasks.h, also for
// options changed after load, e.g. gsa eval's document count for a length) and the multi_doc eval task (how many
// documents fit a length).
//
// Contract:
// - multi_doc_problems(m): every violated cross-field rule of m, each with the fields it concerns (full paths,
//   "data.multi_doc.<field>") and a message that starts with one of them; empty when m is consistent. Assumes the
//   single-field ranges of validate.cpp hold (documents >= 1, alphabet 2..52, ...). The rules:
//   alphabet <= 26 unless digit_values; not digit_values and upper_case_values together; documents x
//   pairs_per_document distinct keys fit in alphabet^key_len; questions <= the pairs of the smallest example
//   ((min_)documents x pairs_per_document); packed_pairs needs compact and pair_width > 0; with pair_width > 0,
//   one pair and the widest header "#<documents - 1>|" fit in pair_width; copy_max_length >= copy_min_length;
//   copy_digits needs digit_values.
// - multi_doc_document_chars(m, d): the characters of document d (0-based) as the task writes it (header, pairs,
//   filler); multi_doc_question_chars(m): one question with its answer ("?<key>", '=' unless compact, the value).
//   One token a character with the byte tokenizer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gsa/config/options.h"

namespace gsa {

struct FieldProblem {
  std::vector<std::string> fields;  // the full paths of the fields the rule concerns
  std::string message;
};

std::vector<FieldProblem> multi_doc_problems(const MultiDocTaskOptions& m);

int64_t multi_doc_document_chars(const MultiDocTaskOptions& m, int64_t d);
int64_t multi_doc_question_chars(const MultiDocTaskOptions& m);

}  // namespace gsa
