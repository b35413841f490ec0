#include "gsa/trainer/task_batch.h"

#include <algorithm>

#include "gsa/runtime/error.h"

namespace gsa {
namespace {

void add_word_starts(std::vector<Document>& docs, const GistOptions& gist, const Tokenizer& tokenizer) {
  if (!gist.word_aware) return;
  for (Document& d : docs) d.context_word_starts = tokenizer.word_starts(d.context);
}

// Layouts of the rows and an all -100 label tensor [B, T] (CPU) to fill.
TaskBatch layouts_of(std::vector<std::vector<Document>>& rows, const GistOptions& gist, const Tokenizer& tokenizer) {
  TaskBatch batch;
  int64_t length = 0;
  for (std::vector<Document>& docs : rows) {
    add_word_starts(docs, gist, tokenizer);
    batch.layouts.push_back(build_layout(docs, gist, tokenizer));
    length = std::max(length, batch.layouts.back().size());
  }
  batch.labels = at::full({static_cast<int64_t>(rows.size()), length}, -100, at::kLong);
  return batch;
}

}  // namespace

TaskBatch make_answer_batch(std::vector<std::vector<Example>> rows, const GistOptions& gist,
                            const Tokenizer& tokenizer, at::Device device) {
  std::vector<std::vector<Document>> docs(rows.size());
  for (size_t b = 0; b < rows.size(); ++b) {
    for (const Example& e : rows[b]) {
      GSA_CHECK(e.answer_len >= 1 && e.answer_len <= static_cast<int64_t>(e.doc.suffix.size()), "an example's answer (",
                e.answer_len, " tokens) must be 1 or more of its ", e.doc.suffix.size(), " suffix tokens");
      docs[b].push_back(e.doc);
    }
  }
  TaskBatch batch = layouts_of(docs, gist, tokenizer);
  auto acc = batch.labels.accessor<int64_t, 2>();
  for (size_t b = 0; b < rows.size(); ++b) {
    const GistLayout& l = batch.layouts[b];
    for (size_t d = 0; d < rows[b].size(); ++d) {
      const Example& e = rows[b][d];
      const auto suffix = static_cast<int64_t>(e.doc.suffix.size());
      const int64_t suffix_start = l.doc_start[d + 1] - suffix;  // the suffix ends its document, all raw
      std::vector<AnswerSpan> spans = e.earlier_answers;
      spans.push_back({suffix - e.answer_len, suffix});
      int64_t free_from = 0;  // the first suffix index the next answer may start at
      for (const AnswerSpan& span : spans) {
        GSA_CHECK(span.begin >= free_from && span.begin < span.end && span.end <= suffix, "an example's answer [",
                  span.begin, ", ", span.end, ") must be a non-empty span of its ", suffix,
                  " suffix tokens after the previous answer (ending at ", free_from, ")");
        GSA_CHECK(suffix_start + span.begin > l.doc_start[d], "an answer at the first position of its document has ",
                  "no position before it to predict it");
        for (int64_t t = suffix_start + span.begin; t < suffix_start + span.end; ++t) {
          acc[static_cast<int64_t>(b)][t - 1] = l.tokens[t];
        }
        free_from = span.end;
      }
    }
  }
  batch.labels = batch.labels.to(device);
  return batch;
}

TaskBatch make_lm_batch(std::vector<std::vector<Document>> rows, const GistOptions& gist, const Tokenizer& tokenizer,
                        at::Device device) {
  TaskBatch batch = layouts_of(rows, gist, tokenizer);
  auto acc = batch.labels.accessor<int64_t, 2>();
  for (size_t b = 0; b < rows.size(); ++b) {
    const GistLayout& l = batch.layouts[b];
    for (int64_t t = 0; t + 1 < l.size(); ++t) {
      if (l.doc[t] == l.doc[t + 1] && !l.is_gist(t + 1)) acc[static_cast<int64_t>(b)][t] = l.tokens[t + 1];
    }
  }
  batch.labels = batch.labels.to(device);
  return batch;
}

}  // namespace gsa
