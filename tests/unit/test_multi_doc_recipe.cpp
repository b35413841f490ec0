// The digits recipe of data.multi_doc (trainer/synthetic_tasks.h, config/multi_doc_rules.h; the dense twin
// scripts/demo_recipe_oracle.py --fmt digits --copyvary, docs/demo-experiments.md). Oracle: the examples' text
// read back with the byte tokenizer and parsed here, never the task's own spans: the 64-token documents and their
// chunk alignment, the labels on exactly the answers and the copied symbols, keys distinct and of both cases, the
// copy fraction, determinism, the retrieval-only stream, and training steps on rows whose documents have no
// context (no gists at all). Tolerance: the copy fraction of 4,000 draws within 0.03 of copy_fraction (about 4
// standard deviations at 0.5); everything else is exact.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/multi_doc_recipe.h"
#include "gsa/config/multi_doc_rules.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/model_tokenizer.h"
#include "gsa/trainer/synthetic_tasks.h"
#include "gsa/trainer/task_batch.h"
#include "gsa/trainer/trainer.h"

namespace gsa {
namespace {

const std::string kKeySymbols = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

bool is_key(char c) { return kKeySymbols.find(c) != std::string::npos; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The candidate demo's data (configs/demo.pbtxt, phase 1 at a fixed 4 documents): per document a header
// chunk "#d|", one chunk of 3 packed pairs "a7b3c9", 6 chunks of filler; 52 key symbols, digit values.
GsaOptions recipe_options() {
  GsaOptions o;
  o.gist.sink = 0;
  o.gist.chunk = 8;
  o.gist.levels = 1;
  o.gist.prev_chunks = 1;
  o.data.source = DataSourceKind::kMultiDoc;
  o.data.multi_doc = test::digits_recipe(4);
  return o;
}

// A copy example's suffix text read back: S + "|" + S (raw form) or "|" + S (copy_in_context); S is returned.
std::string copied_symbols(const std::string& suffix, bool in_context) {
  const size_t bar = suffix.find('|');
  EXPECT_NE(bar, std::string::npos) << suffix;
  const std::string copy = suffix.substr(bar + 1);
  if (!in_context) {
    EXPECT_EQ(suffix.substr(0, bar), copy) << suffix;
  }
  return copy;
}

// Labelled positions of a layout row from its text: per document, a retrieval suffix labels the position before
// each digit, a copy suffix ("...|S") the position before each symbol of S but its first.
std::set<int64_t> expected_labels(const GistLayout& l) {
  std::set<int64_t> labels;
  for (int64_t d = 0; d < l.num_docs(); ++d) {
    std::string suffix;
    int64_t start = -1;
    for (int64_t t = l.doc_start[d]; t < l.doc_start[d + 1]; ++t) {
      if (!l.suffix[t] || l.is_gist(t)) continue;
      if (start < 0) start = t;
      suffix.push_back(static_cast<char>(l.tokens[t]));
    }
    const size_t bar = suffix.find('|');
    for (size_t i = 0; i < suffix.size(); ++i) {
      const bool answer = bar == std::string::npos ? is_digit(suffix[i]) : i > bar + 1;
      if (answer) labels.insert(start + static_cast<int64_t>(i) - 1);
    }
  }
  return labels;
}

void expect_labels_from_text(const TaskBatch& batch) {
  for (size_t r = 0; r < batch.layouts.size(); ++r) {
    const GistLayout& l = batch.layouts[r];
    const std::set<int64_t> expected = expected_labels(l);
    EXPECT_FALSE(expected.empty());
    for (int64_t t = 0; t < batch.labels.size(1); ++t) {
      const int64_t label = batch.labels[static_cast<int64_t>(r)][t].item<int64_t>();
      EXPECT_EQ(label != -100, expected.count(t) == 1) << "row " << r << " position " << t;
      if (label != -100) {
        EXPECT_EQ(label, l.tokens[t + 1]);
      }
    }
  }
}

// Every document is 64 tokens (8 + 8 + 48) and starts a chunk; the pairs are packed in the second chunk; the
// questions ask 3 distinct keys of the context for their values; over 300 examples all 52 key symbols appear.
TEST(MultiDocRecipe, DigitsLayoutIsTheTwinsLayout) {
  const GsaOptions o = recipe_options();
  const MultiDocTaskOptions& m = o.data.multi_doc;
  auto tokenizer = make_model_tokenizer(o);
  auto task = make_synthetic_task(o.data, tokenizer);
  EXPECT_DOUBLE_EQ(task->chance_accuracy(), 0.1);
  for (int64_t d = 0; d < 4; ++d) EXPECT_EQ(multi_doc_document_chars(m, d), 64);
  EXPECT_EQ(multi_doc_question_chars(m), 3);
  std::mt19937_64 rng(7);
  std::set<char> keys_seen;
  for (int i = 0; i < 300; ++i) {
    const Example e = task->sample(rng);
    const std::string context = tokenizer->decode(e.doc.context), suffix = tokenizer->decode(e.doc.suffix);
    ASSERT_EQ(context.size(), 4u * 64);
    std::map<char, char> value_of;
    for (size_t d = 0; d < 4; ++d) {
      const std::string doc = context.substr(d * 64, 64);
      EXPECT_EQ(doc.substr(0, 8), "#" + std::to_string(d) + "|     ");
      const std::string pairs = doc.substr(8, 8);
      EXPECT_EQ(pairs.substr(6), "  ") << pairs;
      for (size_t j = 0; j < 3; ++j) {
        const char key = pairs[2 * j], value = pairs[2 * j + 1];
        EXPECT_TRUE(is_key(key)) << pairs;
        EXPECT_TRUE(is_digit(value)) << pairs;
        EXPECT_TRUE(value_of.emplace(key, value).second) << "key twice: " << key << " in " << context;
        keys_seen.insert(key);
      }
      EXPECT_EQ(doc.substr(16), std::string(48, '.'));
    }
    // "?Kv;?Kv;?Kv"
    ASSERT_EQ(suffix.size(), 11u) << suffix;
    std::set<char> asked;
    for (size_t q = 0; q < 3; ++q) {
      EXPECT_EQ(suffix[4 * q], '?');
      ASSERT_TRUE(value_of.count(suffix[4 * q + 1])) << suffix;
      EXPECT_EQ(suffix[4 * q + 2], value_of[suffix[4 * q + 1]]) << suffix;
      if (q < 2) {
        EXPECT_EQ(suffix[4 * q + 3], ';');
      }
      asked.insert(suffix[4 * q + 1]);
    }
    EXPECT_EQ(asked.size(), 3u);
    if (i == 0) {  // chunk alignment: a gist after every 8 context tokens, so each document is 8 whole chunks
      std::string expected;
      for (int c = 0; c < 32; ++c) expected += "........0";
      EXPECT_EQ(render_layout(build_layout({e.doc}, o.gist)), expected + std::string(11, '.'));
    }
  }
  EXPECT_EQ(keys_seen.size(), 52u);  // both cases: a-z and A-Z
}

// Copy examples: about copy_fraction of the draws, lengths over the whole range, S|S with an empty context and
// the copy but its first symbol as the answer; in a batch next to retrieval examples the labels sit exactly on
// the digits answered and the copied symbols (from the text), and a copy document has no gist.
TEST(MultiDocRecipe, CopyExamplesMixInAtTheirFraction) {
  GsaOptions o = recipe_options();
  MultiDocTaskOptions& m = o.data.multi_doc;
  m.min_documents = 1;
  m.copy_min_length = 8;
  m.copy_max_length = 32;
  auto tokenizer = make_model_tokenizer(o);
  for (const double fraction : {0.0, 0.2, 0.5, 1.0}) {
    SCOPED_TRACE(fraction);
    m.copy_fraction = fraction;
    auto task = make_synthetic_task(o.data, tokenizer);
    std::mt19937_64 rng(21);
    int64_t copies = 0;
    std::set<int64_t> lengths;
    std::set<char> symbols;
    for (int i = 0; i < 4000; ++i) {
      const Example e = task->sample(rng);
      const std::string suffix = tokenizer->decode(e.doc.suffix);
      if (suffix.find('|') == std::string::npos) {
        EXPECT_EQ(suffix.front(), '?');
        continue;
      }
      ++copies;
      EXPECT_TRUE(e.doc.context.empty());
      const std::string copy = copied_symbols(suffix, /*in_context=*/false);
      for (char c : copy) EXPECT_TRUE(is_key(c)) << suffix;
      symbols.insert(copy.begin(), copy.end());
      lengths.insert(static_cast<int64_t>(copy.size()));
      EXPECT_EQ(e.answer_len, static_cast<int64_t>(copy.size()) - 1);
      EXPECT_TRUE(e.earlier_answers.empty());
    }
    EXPECT_NEAR(static_cast<double>(copies) / 4000.0, fraction, 0.03);
    if (fraction > 0) {
      EXPECT_EQ(lengths.size(), 25u);  // 8..32
      EXPECT_EQ(*lengths.begin(), 8);
      EXPECT_EQ(*lengths.rbegin(), 32);
      EXPECT_EQ(symbols.size(), 52u);
    }
  }
  m.copy_fraction = 0.5;
  auto task = make_synthetic_task(o.data, tokenizer);
  std::mt19937_64 rng(3);
  std::vector<Example> e;
  for (int i = 0; i < 9; ++i) e.push_back(task->sample(rng));
  int64_t copy_docs = 0;
  for (const Example& x : e) copy_docs += x.doc.context.empty();
  ASSERT_GT(copy_docs, 0);
  ASSERT_LT(copy_docs, 9);
  const TaskBatch batch =
      make_answer_batch({{e[0], e[1], e[2]}, {e[3]}, {e[4], e[5], e[6], e[7], e[8]}}, o.gist, *tokenizer, at::kCPU);
  expect_labels_from_text(batch);
  for (const GistLayout& l : batch.layouts) {
    for (int64_t d = 0; d < l.num_docs(); ++d) {
      std::string text;
      for (int64_t t = l.doc_start[d]; t < l.doc_start[d + 1]; ++t) text.push_back(static_cast<char>(l.tokens[t]));
      EXPECT_EQ(l.gists_in_doc(0, d) == 0, text.front() != '#') << text;  // a copy, or documents "#0|..."
    }
  }
}

// copy_in_context: the first copy is the gisted context, "|" + the copy the suffix, the copy labelled.
TEST(MultiDocRecipe, CopyInContextGistsTheFirstCopy) {
  GsaOptions o = recipe_options();
  o.data.multi_doc.copy_fraction = 1;
  o.data.multi_doc.copy_in_context = true;
  o.data.multi_doc.copy_min_length = 9;
  o.data.multi_doc.copy_max_length = 20;
  auto tokenizer = make_model_tokenizer(o);
  auto task = make_synthetic_task(o.data, tokenizer);
  std::mt19937_64 rng(4);
  std::vector<Example> e;
  for (int i = 0; i < 40; ++i) {
    e.push_back(task->sample(rng));
    const std::string context = tokenizer->decode(e.back().doc.context);
    const std::string suffix = tokenizer->decode(e.back().doc.suffix);
    EXPECT_EQ(suffix.front(), '|');
    EXPECT_EQ(copied_symbols(suffix, /*in_context=*/true), context);
    EXPECT_GE(context.size(), 9u);
    EXPECT_LE(context.size(), 20u);
    EXPECT_EQ(e.back().answer_len, static_cast<int64_t>(context.size()) - 1);
  }
  const TaskBatch batch = make_answer_batch({{e[0], e[1]}, {e[2]}}, o.gist, *tokenizer, at::kCPU);
  expect_labels_from_text(batch);
  EXPECT_EQ(batch.layouts[1].gists_in_doc(0, 0), (static_cast<int64_t>(e[2].doc.context.size()) + 7) / 8);
}

// copy_digits: the copied symbols are drawn uniformly from the 52 keys and the 10 digits (the retrieval answers'
// symbols), so the copy also teaches the induction head to copy digits; labels as for letters.
TEST(MultiDocRecipe, CopyDigitsDrawsKeysAndDigits) {
  GsaOptions o = recipe_options();
  o.data.multi_doc.copy_fraction = 1;
  o.data.multi_doc.copy_digits = true;
  auto tokenizer = make_model_tokenizer(o);
  auto task = make_synthetic_task(o.data, tokenizer);
  std::mt19937_64 rng(8);
  std::set<char> symbols;
  int64_t digits = 0, total = 0;
  std::vector<Example> e;
  for (int i = 0; i < 2000; ++i) {
    e.push_back(task->sample(rng));
    const std::string copy = copied_symbols(tokenizer->decode(e.back().doc.suffix), /*in_context=*/false);
    for (char c : copy) {
      EXPECT_TRUE(is_key(c) || is_digit(c)) << copy;
      digits += is_digit(c);
    }
    total += static_cast<int64_t>(copy.size());
    symbols.insert(copy.begin(), copy.end());
  }
  EXPECT_EQ(symbols.size(), 62u);
  EXPECT_NEAR(static_cast<double>(digits) / static_cast<double>(total), 10.0 / 62.0, 0.01);
  expect_labels_from_text(make_answer_batch({{e[0], e[1]}, {e[2]}}, o.gist, *tokenizer, at::kCPU));
}

// The same generator state gives the same example; with copy_fraction 0 the copy fields change nothing (no
// draw), and retrieval_only drops the copies.
TEST(MultiDocRecipe, DeterministicAndRetrievalOnly) {
  GsaOptions o = recipe_options();
  o.data.multi_doc.min_documents = 1;
  o.data.multi_doc.copy_fraction = 0.5;
  auto tokenizer = make_model_tokenizer(o);
  auto a = make_synthetic_task(o.data, tokenizer), b = make_synthetic_task(o.data, tokenizer);
  std::mt19937_64 ra(9), rb(9), rc(10);
  bool differs = false;
  for (int i = 0; i < 50; ++i) {
    const Example x = a->sample(ra), y = b->sample(rb), z = a->sample(rc);
    EXPECT_EQ(x.doc.context, y.doc.context);
    EXPECT_EQ(x.doc.suffix, y.doc.suffix);
    EXPECT_EQ(x.answer_len, y.answer_len);
    ASSERT_EQ(x.earlier_answers.size(), y.earlier_answers.size());
    for (size_t k = 0; k < x.earlier_answers.size(); ++k) {
      EXPECT_EQ(x.earlier_answers[k].begin, y.earlier_answers[k].begin);
      EXPECT_EQ(x.earlier_answers[k].end, y.earlier_answers[k].end);
    }
    differs = differs || x.doc.suffix != z.doc.suffix;
  }
  EXPECT_TRUE(differs) << "another seed gave the same examples";

  GsaOptions plain = recipe_options(), unused = recipe_options();
  unused.data.multi_doc.copy_min_length = 3;
  unused.data.multi_doc.copy_in_context = true;
  auto p = make_synthetic_task(plain.data, tokenizer), u = make_synthetic_task(unused.data, tokenizer),
       r = make_synthetic_task(retrieval_only(o.data), tokenizer);
  std::mt19937_64 rp(2), ru(2), rr(2);
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(p->sample(rp).doc.suffix, u->sample(ru).doc.suffix);
    EXPECT_EQ(tokenizer->decode(r->sample(rr).doc.suffix).front(), '?');
  }
  // The constructor applies multi_doc_rules.h too (for options changed after load).
  GsaOptions loose = recipe_options();
  loose.data.multi_doc.compact = false;
  EXPECT_THROW(make_synthetic_task(loose.data, tokenizer), Error);
}

// Rows whose documents have no context (copy examples, no gists at all in a row or in the whole batch) train in
// selective mode and score: the loss of two steps is finite, and the held-out accuracy (retrieval only) is a
// fraction.
TEST(MultiDocRecipe, TrainingStepsAcceptDocumentsWithoutContext) {
  GsaOptions o = recipe_options();
  o.model.hidden_size = 32;
  o.model.intermediate_size = 64;
  o.model.num_layers = 2;
  o.model.num_heads = 2;
  o.model.num_kv_heads = 2;
  o.model.head_dim = 16;
  o.attention.selection.enabled = true;
  o.attention.selection.first_selective_layer = 1;
  o.train.mode = TrainMode::kSelective;
  o.train.batch_size = 4;
  o.train.steps = 2;
  o.train.eval_batches = 1;
  o.data.multi_doc.documents = 2;
  o.data.multi_doc.min_documents = 1;
  for (const bool in_context : {false, true}) {
    for (const double fraction : {1.0, 0.5}) {
      SCOPED_TRACE(str_cat("copy_in_context ", in_context, " copy_fraction ", fraction));
      o.data.multi_doc.copy_in_context = in_context;
      o.data.multi_doc.copy_fraction = fraction;
      Trainer trainer(o, at::kCPU);
      std::ostringstream progress;
      const TrainReport report = trainer.run(progress);
      EXPECT_TRUE(std::isfinite(report.final_loss)) << progress.str();
      EXPECT_GT(report.final_loss, 0);
      EXPECT_GE(report.eval_accuracy, 0);
      EXPECT_LE(report.eval_accuracy, 1);
    }
  }
}

}  // namespace
}  // namespace gsa
