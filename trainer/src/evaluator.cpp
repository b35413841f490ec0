#include "gsa/trainer/evaluator.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "gsa/parallel/local_communicator.h"
#include "gsa/parallel/sp_model.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/model_tokenizer.h"
#include "gsa/trainer/task_batch.h"

namespace gsa {
namespace {

// One batch's sums through the training path's loss and accuracy (sp_model.h): sequence-parallel over sp, or
// one process as a group of one.
ScoreSums score_batch(const LlamaModel& model, const AttentionModeOptions& mode, const TaskBatch& batch,
                      Communicator* sp) {
  ScoreSums sums;
  const int64_t rows = static_cast<int64_t>(batch.layouts.size());
  sums.samples = rows;
  for (const GistLayout& layout : batch.layouts) sums.positions += layout.size();
  LocalCommunicator alone(model.device());
  Communicator& group = sp != nullptr ? *sp : alone;
  // Every rank holds the whole batch; it scores its shard of every row.
  const SequenceShards shards = shard_at_sections(batch.layouts, group.size());
  const at::Tensor labels = batch.labels.narrow(1, 0, shards.length());
  const SpLossResult result =
      sp_next_token_loss(model, batch.layouts, labels, shards, mode.attention, mode.selective, group, group);
  sums.answer_tokens = result.labelled;
  sums.loss_sum = result.global_loss * static_cast<double>(result.labelled);
  const AnswerTally tally = sp_answer_tally(result, 0, rows, group);
  GSA_CHECK(tally.answers == rows, "eval: ", tally.answers, " answers in ", rows, " samples (one each expected)");
  sums.correct = tally.correct;
  return sums;
}

}  // namespace

uint64_t eval_seed(uint64_t seed, int64_t length) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (static_cast<uint64_t>(length) + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

ScoreSums score_samples(const LlamaModel& model, const GsaOptions& options, AttentionMode mode,
                        const std::vector<EvalSample>& samples, int64_t batch_size, Communicator* sp) {
  GSA_CHECK(batch_size >= 1, "eval batch size must be >= 1, got ", batch_size);
  GSA_CHECK(!samples.empty(), "score_samples: no samples");
  at::NoGradGuard no_grad;
  const AttentionModeOptions m = attention_mode_options(mode, options);
  const std::shared_ptr<const ModelTokenizer> tokenizer = make_model_tokenizer(options);
  const int64_t answer_len = static_cast<int64_t>(samples.front().answer.size());
  ScoreSums total;
  for (size_t first = 0; first < samples.size(); first += static_cast<size_t>(batch_size)) {
    std::vector<std::vector<Example>> rows;  // one sample a row
    for (size_t i = first; i < std::min(samples.size(), first + static_cast<size_t>(batch_size)); ++i) {
      GSA_CHECK(static_cast<int64_t>(samples[i].answer.size()) == answer_len, "eval sample ", i, " has ",
                samples[i].answer.size(), " answer tokens, sample 0 has ", answer_len);
      Document doc = samples[i].doc;
      doc.suffix.insert(doc.suffix.end(), samples[i].answer.begin(), samples[i].answer.end());
      rows.push_back({Example{mode_document(doc, m), answer_len, {}}});
    }
    const ScoreSums b = score_batch(model, m, make_answer_batch(std::move(rows), m.gist, *tokenizer, at::kCPU), sp);
    total.loss_sum += b.loss_sum;
    total.answer_tokens += b.answer_tokens;
    total.correct += b.correct;
    total.samples += b.samples;
    total.positions += b.positions;
  }
  return total;
}

EvalReport run_eval(const LlamaModel& model, const GsaOptions& options, const EvalSettings& settings,
                    Communicator* sp) {
  GSA_CHECK(!settings.lengths.empty(), "gsa eval: no lengths");
  GSA_CHECK(!settings.modes.empty(), "gsa eval: no attention modes");
  GSA_CHECK(settings.samples >= 1, "gsa eval: samples must be >= 1, got ", settings.samples);
  EvalReport report;
  report.task = settings.task;
  report.samples = settings.samples;
  report.seed = settings.seed;
  // Every task is built before anything runs, so a length it cannot fill fails at once.
  std::vector<std::unique_ptr<EvalTask>> tasks;
  for (int64_t length : settings.lengths) {
    tasks.push_back(make_eval_task(settings.task, options, length, eval_seed(settings.seed, length)));
  }
  report.chance_accuracy = tasks.front()->chance_accuracy();
  for (size_t i = 0; i < tasks.size(); ++i) {
    LengthResult row;
    row.length = settings.lengths[i];
    row.description = tasks[i]->describe();
    std::vector<EvalSample> samples;
    double raw = 0;
    for (int64_t s = 0; s < settings.samples; ++s) {
      samples.push_back(tasks[i]->sample());
      const Document& d = samples.back().doc;
      raw += static_cast<double>(d.context.size() + d.suffix.size() + samples.back().answer.size());
    }
    row.mean_raw_tokens = raw / static_cast<double>(settings.samples);
    for (AttentionMode mode : settings.modes) {
      const auto start = std::chrono::steady_clock::now();
      const ScoreSums sums = score_samples(model, options, mode, samples, settings.batch_size, sp);
      ModeScore score;
      score.mode = mode;
      score.loss = sums.loss_sum / static_cast<double>(sums.answer_tokens);
      score.accuracy = static_cast<double>(sums.correct) / static_cast<double>(sums.samples);
      score.mean_positions = static_cast<double>(sums.positions) / static_cast<double>(sums.samples);
      score.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      row.modes.push_back(score);
    }
    report.lengths.push_back(row);
  }
  return report;
}

}  // namespace gsa
