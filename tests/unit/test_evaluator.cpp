// gsa eval's measurement (trainer/evaluator.h, eval_task.h): on a tiny trained checkpoint, the loss and accuracy
// of every mode at every length equal an independent per-sample recomputation (one LlamaModel::forward per sample
// over a hand-built layout, float64 log-softmax); the eval tasks' length rule and their errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "common/multi_doc_recipe.h"
#include "gsa/config/config_loader.h"
#include "gsa/runtime/attention_plan.h"
#include "gsa/runtime/checkpoint.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/file_util.h"
#include "gsa/trainer/eval_report.h"
#include "gsa/trainer/evaluator.h"
#include "gsa/trainer/trainer.h"
#include "common/error_of.h"

namespace gsa {
namespace {

using gsa::test_support::error_of;

// The tests' small retrieval model (configs/tiny-retrieval.pbtxt: key_len 2, value_len 1, alphabet 16).
GsaOptions tiny_retrieval_config(const std::vector<std::string>& overrides = {}) {
  return load_config_file(std::string(GSA_SOURCE_DIR) + "/configs/tiny-retrieval.pbtxt", overrides);
}

std::string test_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string dir = std::string(GSA_BINARY_DIR) + "/test_tmp/evaluator/" + info->name();
  remove_tree(dir);
  make_directories(dir);
  return dir;
}

struct Oracle {
  double loss = 0;
  double accuracy = 0;
  double mean_positions = 0;
};

// Each sample alone, its layout built here by hand for the mode (not through attention_mode.h).
Oracle recompute(const LlamaModel& model, const GsaOptions& options, AttentionMode mode,
                 const std::vector<EvalSample>& samples) {
  at::NoGradGuard no_grad;
  double loss = 0, positions = 0;
  int64_t tokens = 0, right = 0;
  for (const EvalSample& s : samples) {
    std::vector<int64_t> suffix = s.doc.suffix;
    suffix.insert(suffix.end(), s.answer.begin(), s.answer.end());
    Document doc;
    if (mode == AttentionMode::kFull) {
      doc.suffix = s.doc.context;
      doc.suffix.insert(doc.suffix.end(), suffix.begin(), suffix.end());
    } else {
      doc.context = s.doc.context;
      doc.suffix = suffix;
    }
    AttentionOptions attention = options.attention;
    attention.selection.enabled = mode == AttentionMode::kSelective;
    const GistLayout layout = build_layout({doc}, options.gist);
    if (mode == AttentionMode::kFull) {
      for (int64_t t = 0; t < layout.size(); ++t) EXPECT_FALSE(layout.is_gist(t));
    }
    AttentionPlan plan = make_attention_plan({&layout}, 0, -1, attention, model.device());
    const at::Tensor logits = model.forward(plan.tokens, plan.rope_pos, plan, attention,
                                            mode == AttentionMode::kSelective)[0]
                                  .to(at::kDouble);  // [T, V]
    const at::Tensor logp = logits.log_softmax(-1);
    bool all = true;
    const int64_t n = layout.size(), a = static_cast<int64_t>(s.answer.size());
    for (int64_t t = n - a; t < n; ++t) {
      loss -= logp[t - 1][layout.tokens[t]].item<double>();
      all = all && logits[t - 1].argmax().item<int64_t>() == layout.tokens[t];
      ++tokens;
    }
    right += all;
    positions += static_cast<double>(n);
  }
  const double count = static_cast<double>(samples.size());
  return {loss / static_cast<double>(tokens), static_cast<double>(right) / count, positions / count};
}

TEST(Evaluator, EqualsPerSampleRecomputationOnATrainedCheckpoint) {
  const std::string dir = test_dir();
  {
    GsaOptions train = tiny_retrieval_config({"train.steps=40", "train.eval_batches=1", "train.log_every=100",
                                              "train.output_dir=" + dir});
    Trainer trainer(train, at::kCPU);
    std::ostringstream quiet;
    trainer.run(quiet);
  }
  GsaOptions options;
  const LlamaModel model = load_checkpoint(dir, at::kCPU, &options);
  EvalSettings settings;
  settings.lengths = {48, 93};  // 8 pairs (the training shape) and 17
  settings.samples = 11;
  settings.batch_size = 4;  // uneven last batch
  settings.seed = 3;
  settings.modes = {AttentionMode::kSelective, AttentionMode::kFull, AttentionMode::kGist};
  const EvalReport report = run_eval(model, options, settings);
  ASSERT_EQ(report.lengths.size(), 2u);
  for (size_t i = 0; i < report.lengths.size(); ++i) {
    const LengthResult& row = report.lengths[i];
    const int64_t length = settings.lengths[i];
    auto task = make_eval_task("retrieval", options, length, eval_seed(settings.seed, length));
    std::vector<EvalSample> samples;
    for (int64_t s = 0; s < settings.samples; ++s) samples.push_back(task->sample());
    ASSERT_EQ(row.modes.size(), 3u);
    for (const ModeScore& score : row.modes) {
      const Oracle oracle = recompute(model, options, score.mode, samples);
      const char* name = attention_mode_name(score.mode);
      EXPECT_NEAR(score.loss, oracle.loss, 1e-5 * oracle.loss) << name << " at " << length;
      EXPECT_EQ(score.accuracy, oracle.accuracy) << name << " at " << length;
      EXPECT_EQ(score.mean_positions, oracle.mean_positions) << name << " at " << length;
    }
    // The modes really differ: full has no gists, and its loss is not gist's.
    EXPECT_EQ(row.modes[1].mean_positions, row.mean_raw_tokens);
    EXPECT_GT(row.modes[2].mean_positions, row.mean_raw_tokens);
    EXPECT_GT(std::abs(row.modes[1].loss - row.modes[2].loss), 1e-4);
  }
  // The table lists the three modes; the JSON holds every number at full precision.
  const std::string table = format_eval_table(report);
  for (const char* mode : {"full", "gist", "selective"}) EXPECT_NE(table.find(mode), std::string::npos) << table;
  char loss[64];
  std::snprintf(loss, sizeof(loss), "\"loss\": %.17g", report.lengths[1].modes[0].loss);
  EXPECT_NE(eval_report_json(report, dir, 1).find(loss), std::string::npos);
}

TEST(EvalTask, RetrievalFillsTheLengthAndNamesWhatItCannotFill) {
  const GsaOptions options = tiny_retrieval_config();  // key_len 2, value_len 1, alphabet 16
  // A document: "kv:" + pairs of 5 tokens + "?kk=" + 1 answer token = 8 + 5 * pairs.
  for (int64_t length : {13, 17, 500, 1288}) {
    auto task = make_eval_task("retrieval", options, length, 1);
    const EvalSample s = task->sample();
    const int64_t raw = static_cast<int64_t>(s.doc.context.size() + s.doc.suffix.size() + s.answer.size());
    EXPECT_LE(raw, length);
    EXPECT_GT(raw, length - 5);
    EXPECT_EQ(task->answer_length(), 1);
    EXPECT_EQ(task->describe(), std::to_string((length - 8) / 5) + " key-value pairs");
  }
  EXPECT_NE(error_of([&] { make_eval_task("retrieval", options, 1289 + 5, 1); })
                .find("needs 257 distinct keys, but data.retrieval allows alphabet^key_len = 256 "
                      "(longest length: 1288)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { make_eval_task("retrieval", options, 12, 1); }).find("length 12 is below 13"),
            std::string::npos);
  EXPECT_NE(error_of([&] { make_eval_task("passkey", options, 100, 1); })
                .find("unknown eval task 'passkey' (known: retrieval, multi_doc)"),
            std::string::npos);
  // The same seed gives the same samples; another seed others.
  auto a = make_eval_task("retrieval", options, 200, 5), b = make_eval_task("retrieval", options, 200, 5);
  auto c = make_eval_task("retrieval", options, 200, 6);
  const EvalSample sa = a->sample(), sb = b->sample(), sc = c->sample();
  EXPECT_EQ(sa.doc.context, sb.doc.context);
  EXPECT_NE(sa.doc.context, sc.doc.context);
}

TEST(EvalTask, MultiDocFillsTheLengthWithDocumentsAndAsksOneQuestion) {
  GsaOptions options = tiny_retrieval_config();
  MultiDocTaskOptions& m = options.data.multi_doc;
  m.documents = 3;
  m.min_documents = 2;  // the eval draws every sample at its length
  m.pairs_per_document = 7;
  m.key_len = 2;
  m.value_len = 1;
  m.alphabet = 16;
  m.questions = 5;
  m.pair_width = 8;
  // A document of D documents: D * (1 header + 7 pairs) blocks of 8 tokens, then "?kk=" and the answer.
  for (int64_t documents : {1, 2, 16}) {
    const int64_t length = documents * 64 + 5;
    for (int64_t extra : {0, 63}) {
      auto task = make_eval_task("multi_doc", options, length + extra, 1);
      const EvalSample s = task->sample();
      EXPECT_EQ(static_cast<int64_t>(s.doc.context.size()), documents * 64);
      EXPECT_EQ(s.doc.suffix.size(), 4u);  // one question
      EXPECT_EQ(s.doc.suffix.front(), '?');
      EXPECT_EQ(s.answer.size(), 1u);
      EXPECT_EQ(task->describe(), std::to_string(documents) + " docs x 7 pairs");
    }
  }
  EXPECT_NE(error_of([&] { make_eval_task("multi_doc", options, 68, 1); }).find("length 68 is below 69"),
            std::string::npos);
  // 256 keys: 36 documents of 7 pairs need 252, 37 need 259.
  EXPECT_NO_THROW(make_eval_task("multi_doc", options, 36 * 64 + 5, 1));
  EXPECT_NE(error_of([&] { make_eval_task("multi_doc", options, 37 * 64 + 5, 1); })
                .find("needs 259 distinct keys, but data.multi_doc allows alphabet^key_len = 256"),
            std::string::npos);
}

// The digits recipe (packed pairs, filler: 64 tokens a document): 16 documents fill 1,024 context tokens at length
// 1,028 ("?K" + the digit), and the samples are retrieval questions even when training draws only copy examples
// (data.multi_doc.copy_fraction never reaches gsa eval).
TEST(EvalTask, MultiDocRecipeScoresRetrievalOnly) {
  GsaOptions options = tiny_retrieval_config();
  MultiDocTaskOptions& m = options.data.multi_doc;
  m = test::digits_recipe(4);
  m.min_documents = 1;
  m.copy_fraction = 1;
  for (const auto& [length, documents] : {std::pair<int64_t, int64_t>{1028, 16}, {1027, 16}, {1026, 15}, {67, 1}}) {
    auto task = make_eval_task("multi_doc", options, length, 1);
    EXPECT_EQ(task->describe(), std::to_string(documents) + " docs x 3 pairs");
    EXPECT_DOUBLE_EQ(task->chance_accuracy(), 0.1);
    for (int i = 0; i < 20; ++i) {
      const EvalSample s = task->sample();
      EXPECT_EQ(static_cast<int64_t>(s.doc.context.size()), documents * 64);
      ASSERT_EQ(s.doc.suffix.size(), 2u);  // "?K"
      EXPECT_EQ(s.doc.suffix[0], '?');
      ASSERT_EQ(s.answer.size(), 1u);
      EXPECT_TRUE(s.answer[0] >= '0' && s.answer[0] <= '9');
    }
  }
}

}  // namespace
}  // namespace gsa
