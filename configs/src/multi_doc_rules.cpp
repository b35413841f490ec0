#include "gsa/config/multi_doc_rules.h"

#include <algorithm>
#include <cmath>

namespace gsa {
namespace {

constexpr int64_t kLetters = 26;

std::string field(const char* name) { return std::string("data.multi_doc.") + name; }

int64_t header_chars(int64_t d) { return static_cast<int64_t>(std::to_string(d).size()) + 2; }  // "#<d>|"

// One pair: "<key><value>" packed, "<key><value>;" compact, "<key>=<value>;" otherwise.
int64_t pair_chars(const MultiDocTaskOptions& m) {
  return m.key_len + m.value_len + (m.packed_pairs ? 0 : m.compact ? 1 : 2);
}

}  // namespace

std::vector<FieldProblem> multi_doc_problems(const MultiDocTaskOptions& m) {
  std::vector<FieldProblem> problems;
  auto fail = [&](std::vector<std::string> fields, std::string message) {
    problems.push_back({std::move(fields), std::move(message)});
  };
  if (m.alphabet > kLetters && !m.digit_values) {
    fail({field("alphabet"), field("digit_values")},
         field("alphabet") + " = " + std::to_string(m.alphabet) + " is above 26, which needs " + field("digit_values") +
             ": true (keys use a-z then A-Z, and letter values have 26 symbols at most)");
  }
  if (m.digit_values && m.upper_case_values) {
    fail({field("digit_values"), field("upper_case_values")},
         field("digit_values") + " and " + field("upper_case_values") +
             " are both true: values are either digits or upper-case letters");
  }
  const int64_t pairs = m.documents * m.pairs_per_document;
  const double keys = std::pow(static_cast<double>(m.alphabet), static_cast<double>(m.key_len));
  if (keys < static_cast<double>(pairs)) {
    fail({field("documents"), field("pairs_per_document"), field("key_len"), field("alphabet")},
         field("documents") + " x pairs_per_document = " + std::to_string(pairs) +
             " distinct keys need alphabet^key_len >= " + std::to_string(pairs) + " (got " +
             std::to_string(static_cast<int64_t>(keys)) + ")");
  }
  const int64_t fewest = (m.min_documents > 0 ? m.min_documents : m.documents) * m.pairs_per_document;
  if (m.questions > fewest) {
    fail({field("questions"), field("min_documents"), field("documents"), field("pairs_per_document")},
         field("questions") + " = " + std::to_string(m.questions) + ": " + std::to_string(m.questions) +
             " questions about distinct keys need at least " + std::to_string(m.questions) +
             " pairs, but an example may have " + std::to_string(fewest) + " ((min_)documents x pairs_per_document)");
  }
  if (m.packed_pairs && !m.compact) {
    fail({field("packed_pairs"), field("compact")},
         field("packed_pairs") + " needs " + field("compact") + ": true (packed pairs have no '=' and no ';')");
  }
  if (m.packed_pairs && m.pair_width <= 0) {
    fail({field("packed_pairs"), field("pair_width")}, field("packed_pairs") + " needs " + field("pair_width") +
                                                           " > 0 (a document's pairs are padded to a multiple of it)");
  }
  if (m.pair_width > 0) {
    const int64_t widest = std::max(pair_chars(m), header_chars(m.documents - 1));
    if (widest > m.pair_width) {
      fail({field("pair_width"), field("key_len"), field("value_len"), field("documents")},
           field("pair_width") + " = " + std::to_string(m.pair_width) + " is narrower than " + std::to_string(widest) +
               " characters (a pair" + (m.packed_pairs ? " <key><value>" : "") + " or the header \"#" +
               std::to_string(m.documents - 1) + "|\")");
    }
  }
  if (m.copy_digits && !m.digit_values) {
    fail({field("copy_digits"), field("digit_values")},
         field("copy_digits") + " needs " + field("digit_values") + " (it copies the answers' digits too)");
  }
  if (m.copy_max_length < m.copy_min_length) {
    fail({field("copy_max_length"), field("copy_min_length")},
         field("copy_max_length") + " = " + std::to_string(m.copy_max_length) + " is below " +
             field("copy_min_length") + " = " + std::to_string(m.copy_min_length));
  }
  return problems;
}

int64_t multi_doc_document_chars(const MultiDocTaskOptions& m, int64_t d) {
  const int64_t header = m.pair_width > 0 ? m.pair_width : header_chars(d);
  int64_t body = m.pairs_per_document * (m.pair_width > 0 && !m.packed_pairs ? m.pair_width : pair_chars(m));
  if (m.packed_pairs && m.pair_width > 0) body = (body + m.pair_width - 1) / m.pair_width * m.pair_width;
  return header + body + m.filler;
}

int64_t multi_doc_question_chars(const MultiDocTaskOptions& m) {
  return 1 + m.key_len + (m.compact ? 0 : 1) + m.value_len;
}

}  // namespace gsa
