#include "gsa/trainer/trainer.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iomanip>

#include "gsa/config/config_loader.h"
#include "gsa/runtime/attention_plan.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/file_util.h"
#include "gsa/runtime/safetensors.h"
#include "gsa/trainer/lr_schedule.h"

namespace gsa {
namespace {

AdamWOptions adamw_options(const TrainOptions& t) {
  AdamWOptions o;
  o.beta1 = t.beta1;
  o.beta2 = t.beta2;
  o.weight_decay = t.weight_decay;
  return o;
}

at::Tensor next_token_loss(const at::Tensor& logits, const at::Tensor& labels) {
  return at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}), labels.reshape({-1}), {},
                                at::Reduction::Mean, -100);
}

}  // namespace

double answer_accuracy(const at::Tensor& logits, const at::Tensor& labels) {
  at::Tensor labelled = labels != -100;
  at::Tensor right = (logits.argmax(-1) == labels).logical_or(labelled.logical_not());
  return right.all(-1).to(at::kFloat).mean().item<double>();
}

Trainer::Trainer(const GsaOptions& options, at::Device device)
    : options_(options),
      device_(device),
      model_(LlamaModel::create(options.model, options.train.seed, device)),
      optimizer_((model_.set_requires_grad(true), model_.parameters()), adamw_options(options.train)),
      task_(options.data.retrieval, options.gist, options.train.seed + 1),
      eval_task_(options.data.retrieval, options.gist, options.train.seed + 0x5eed),
      schedule_{options.train.lr, options.train.min_lr_ratio, options.train.warmup_steps, options.train.steps} {}

StepMetrics Trainer::train_step(int64_t step) {
  const TrainOptions& t = options_.train;
  const auto start = std::chrono::steady_clock::now();
  TaskBatch batch = task_.next_batch(t.batch_size, device_);
  AttentionPlan plan = make_attention_plan(row_pointers(batch.layouts), 0, -1, options_.attention, device_);
  const bool selective = t.mode == TrainMode::kSelective;
  at::Tensor logits = model_.forward(plan.tokens, plan.rope_pos, plan, options_.attention, selective);
  at::Tensor loss = next_token_loss(logits, batch.labels);
  optimizer_.zero_grad();
  loss.backward();
  StepMetrics m;
  m.step = step;
  m.grad_norm = optimizer_.clip_grad_norm(t.grad_clip);
  m.lr = schedule_.lr_at(step);
  optimizer_.step(m.lr);
  m.loss = loss.item<double>();
  m.accuracy = answer_accuracy(logits.detach(), batch.labels);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  m.tokens_per_second = static_cast<double>(plan.tokens.numel()) / seconds;
  return m;
}

double Trainer::evaluate(int64_t batches) {
  at::NoGradGuard no_grad;
  double total = 0;
  for (int64_t i = 0; i < batches; ++i) {
    TaskBatch batch = eval_task_.next_batch(options_.train.batch_size, device_);
    AttentionPlan plan = make_attention_plan(row_pointers(batch.layouts), 0, -1, options_.attention, device_);
    at::Tensor logits = model_.forward(plan.tokens, plan.rope_pos, plan, options_.attention,
                                       options_.attention.selection.enabled);
    total += answer_accuracy(logits, batch.labels);
  }
  return total / static_cast<double>(batches);
}

TrainReport Trainer::run(std::ostream& progress) {
  const TrainOptions& t = options_.train;
  TrainReport report;
  report.chance_accuracy = task_.chance_accuracy();
  report.initial_eval_accuracy = evaluate(t.eval_batches);
  progress << "gsa train: " << model_.num_parameters() << " parameters, " << t.steps << " steps of "
           << t.batch_size << " sequences, mode " << (t.mode == TrainMode::kSelective ? "selective" : "cpt")
           << ", device " << device_ << "\n"
           << "  answer accuracy before training " << std::fixed << std::setprecision(3)
           << report.initial_eval_accuracy << " (chance " << report.chance_accuracy << ")\n";
  std::unique_ptr<std::ofstream> metrics;
  if (!t.output_dir.empty()) {
    make_directories(t.output_dir);
    metrics = std::make_unique<std::ofstream>(join_path(t.output_dir, "metrics.jsonl"), std::ios::app);
    GSA_CHECK(metrics->good(), "cannot open ", join_path(t.output_dir, "metrics.jsonl"));
  }
  const auto start = std::chrono::steady_clock::now();
  double window_loss = 0, window_acc = 0;
  int64_t window = 0;
  for (int64_t step = 0; step < t.steps; ++step) {
    StepMetrics m = train_step(step);
    GSA_CHECK(std::isfinite(m.loss), "loss became ", m.loss, " at step ", step);
    window_loss += m.loss;
    window_acc += m.accuracy;
    ++window;
    if (metrics) {
      *metrics << "{\"step\":" << m.step << ",\"loss\":" << m.loss << ",\"accuracy\":" << m.accuracy
               << ",\"lr\":" << m.lr << ",\"grad_norm\":" << m.grad_norm << ",\"tokens_per_s\":"
               << m.tokens_per_second << "}\n";
    }
    if ((step + 1) % t.log_every == 0 || step + 1 == t.steps) {
      report.final_loss = window_loss / window;
      progress << "  step " << std::setw(5) << step + 1 << "/" << t.steps << "  loss " << std::setprecision(4)
               << report.final_loss << "  acc " << std::setprecision(3) << window_acc / window << "  lr "
               << std::scientific << std::setprecision(2) << m.lr << std::fixed << "  |g| " << std::setprecision(2)
               << m.grad_norm << "  " << std::setprecision(0) << m.tokens_per_second << " tok/s\n"
               << std::flush;
      window_loss = window_acc = 0;
      window = 0;
    }
  }
  report.steps = t.steps;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  report.eval_accuracy = evaluate(t.eval_batches);
  progress << std::setprecision(3) << "  answer accuracy after training " << report.eval_accuracy << " (chance "
           << report.chance_accuracy << "), " << std::setprecision(1) << report.seconds << " s\n";
  if (!t.output_dir.empty()) {
    save_checkpoint(join_path(t.output_dir, "checkpoint"));
    progress << "  checkpoint: " << join_path(t.output_dir, "checkpoint") << "\n";
  }
  return report;
}

void Trainer::save_checkpoint(const std::string& dir) const {
  // Build everything in <dir>.tmp, then swap it in: a crash leaves either the old or the new checkpoint.
  const std::string tmp = dir + ".tmp";
  const std::string old = dir + ".old";
  remove_tree(tmp);
  make_directories(tmp);
  save_safetensors(join_path(tmp, "model.safetensors"), model_.parameters(), {{"format", "pt"}, {"producer", "gsa"}});
  save_safetensors(join_path(tmp, "optimizer.safetensors"), optimizer_.state(),
                   {{"step", std::to_string(optimizer_.steps())}});
  write_file_atomic(join_path(tmp, "config.pbtxt"), options_to_text(options_));
  sync_directory(tmp);
  remove_tree(old);
  if (path_exists(dir)) rename_path(dir, old);
  rename_path(tmp, dir);
  remove_tree(old);
}

LlamaModel load_checkpoint(const std::string& dir, at::Device device, GsaOptions* options) {
  GSA_CHECK(is_directory(dir), "checkpoint '", dir, "' is not a directory");
  GsaOptions loaded = load_config_file(join_path(dir, "config.pbtxt"));
  LlamaModel model = LlamaModel::from_tensors(loaded.model, load_safetensors(join_path(dir, "model.safetensors")), device);
  if (options != nullptr) *options = loaded;
  return model;
}

}  // namespace gsa
