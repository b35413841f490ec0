#include "gsa/trainer/trainer.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iomanip>

#include "gsa/config/config_loader.h"
#include "gsa/parallel/sp_model.h"
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

Trainer::Trainer(const GsaOptions& options, at::Device device, const ProcessGroups* groups)
    : options_(options),
      device_(groups != nullptr ? groups->device : device),
      groups_(groups),
      model_(LlamaModel::create(options.model, options.train.seed, device_)),
      optimizer_((model_.set_requires_grad(true), model_.parameters()), adamw_options(options.train)),
      task_(options.data.retrieval, options.gist, options.train.seed + 1),
      eval_task_(options.data.retrieval, options.gist, options.train.seed + 0x5eed),
      schedule_{options.train.lr, options.train.min_lr_ratio, options.train.warmup_steps, options.train.steps} {
  if (groups_ != nullptr) {
    GSA_CHECK(options.train.batch_size % groups_->mesh.dp == 0, "train.batch_size ", options.train.batch_size,
              " must be a multiple of dp ", groups_->mesh.dp, " (each replica takes an equal share of the rows)");
    gradient_sync_ = std::make_unique<GradientSync>(model_.parameter_list(), groups_->world);
  }
}

Trainer::BatchResult Trainer::run_batch(const TaskBatch& batch, bool selective) {
  BatchResult r;
  if (groups_ == nullptr) {
    AttentionPlan plan = make_attention_plan(row_pointers(batch.layouts), 0, -1, options_.attention, device_);
    at::Tensor logits = model_.forward(plan.tokens, plan.rope_pos, plan, options_.attention, selective);
    r.loss = next_token_loss(logits, batch.labels);
    r.loss_value = r.loss.item<double>();
    r.accuracy = answer_accuracy(logits.detach(), batch.labels);
    r.tokens = plan.tokens.numel();
    return r;
  }
  // This replica's rows, cut over its sp group.
  const DeviceMesh& mesh = groups_->mesh;
  const int64_t global_rows = static_cast<int64_t>(batch.layouts.size()), rows = global_rows / mesh.dp;
  const int64_t first = mesh.dp_rank() * rows;
  std::vector<GistLayout> mine(batch.layouts.begin() + first, batch.layouts.begin() + first + rows);
  const int64_t length = padded_length(mine);
  at::Tensor labels = batch.labels.narrow(0, first, rows).narrow(1, 0, length);
  const SequenceShards shards = shard_at_sections(mine, mesh.sp);
  SpLossResult result =
      sp_next_token_loss(model_, mine, labels, shards, options_.attention, selective, *groups_->sp, *groups_->world);
  r.loss = result.loss;
  r.loss_value = result.global_loss;
  // Whole-answer accuracy: wrong labelled positions per global row, summed over the world.
  at::Tensor local_labels = labels.narrow(1, shards.shard_begin(mesh.sp_rank()), shards.shard_size(mesh.sp_rank()))
                                .to(result.logits.device());
  at::Tensor wrong = (result.logits.argmax(-1) != local_labels).logical_and(local_labels != -100).sum(-1);
  at::Tensor per_row = at::zeros({global_rows}, at::TensorOptions().dtype(at::kLong).device(groups_->world->device()));
  per_row.narrow(0, first, rows).copy_(wrong);
  groups_->world->all_reduce(per_row);
  r.accuracy = (per_row == 0).to(at::kDouble).mean().item<double>();
  r.tokens = global_rows * batch.labels.size(1);
  return r;
}

StepMetrics Trainer::train_step(int64_t step) {
  const TrainOptions& t = options_.train;
  const auto start = std::chrono::steady_clock::now();
  TaskBatch batch = task_.next_batch(t.batch_size, device_);  // the global batch (the same on every rank)
  optimizer_.zero_grad();
  BatchResult r = run_batch(batch, t.mode == TrainMode::kSelective);
  r.loss.backward();
  if (gradient_sync_) gradient_sync_->finish();  // summed over dp x sp: every rank holds the same gradients
  StepMetrics m;
  m.step = step;
  m.grad_norm = optimizer_.clip_grad_norm(t.grad_clip);
  m.lr = schedule_.lr_at(step);
  optimizer_.step(m.lr);
  m.loss = r.loss_value;
  m.accuracy = r.accuracy;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  m.tokens_per_second = static_cast<double>(r.tokens) / seconds;
  return m;
}

double Trainer::evaluate(int64_t batches) {
  at::NoGradGuard no_grad;
  double total = 0;
  for (int64_t i = 0; i < batches; ++i) {
    TaskBatch batch = eval_task_.next_batch(options_.train.batch_size, device_);
    total += run_batch(batch, options_.attention.selection.enabled).accuracy;
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
           << ", device " << device_
           << (groups_ ? str_cat(", ", groups_->mesh.world_size, " ranks: dp ", groups_->mesh.dp, " x sp ",
                                 groups_->mesh.sp, " over ", groups_->sp->name()) : std::string())
           << "\n"
           << "  answer accuracy before training " << std::fixed << std::setprecision(3)
           << report.initial_eval_accuracy << " (chance " << report.chance_accuracy << ")\n";
  std::unique_ptr<std::ofstream> metrics;
  if (!t.output_dir.empty() && is_root()) {
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
  if (!t.output_dir.empty() && is_root()) {
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
