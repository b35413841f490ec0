#include "gsa/trainer/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iomanip>

#include "gsa/config/config_loader.h"
#include "gsa/parallel/sp_model.h"
#include "gsa/runtime/attention_plan.h"
#include "gsa/runtime/checkpoint.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/file_util.h"
#include "gsa/trainer/event_writer.h"

namespace gsa {
namespace {

AdamWOptions adamw_options(const TrainOptions& t) {
  AdamWOptions o;
  o.beta1 = t.beta1;
  o.beta2 = t.beta2;
  o.weight_decay = t.weight_decay;
  return o;
}

// Names of the data generators in a checkpoint's state.
constexpr char kTrainData[] = "train_task";
constexpr char kEvalData[] = "eval_task";

std::string checkpoints_dir(const TrainOptions& t) { return join_path(t.output_dir, "checkpoints"); }

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// "45s", "12m05s", "3h07m".
std::string format_duration(double seconds) {
  const auto s = static_cast<int64_t>(std::llround(std::max(0.0, seconds)));
  char text[32];
  if (s < 60) {
    std::snprintf(text, sizeof(text), "%llds", static_cast<long long>(s));
  } else if (s < 3600) {
    std::snprintf(text, sizeof(text), "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  } else {
    std::snprintf(text, sizeof(text), "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60));
  }
  return text;
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

void Trainer::init_from(const std::string& path) {
  GsaOptions loaded;
  const LlamaModel source = load_checkpoint(path, device_, &loaded);
  GsaOptions theirs, ours;
  theirs.model = loaded.model;
  ours.model = options_.model;
  GSA_CHECK(options_to_text(theirs) == options_to_text(ours), "--init-from ", path,
            ": its model config differs from this run's (take it with with_model_of_checkpoint)");
  at::NoGradGuard no_grad;
  for (const auto& [name, p] : model_.parameters()) p.copy_(source.parameters().at(name));
}

int64_t Trainer::resume() {
  const TrainOptions& t = options_.train;
  GSA_CHECK(!t.output_dir.empty(), "resume: train.output_dir (--output-dir) is empty: no checkpoints to resume from");
  const CheckpointStore store(checkpoints_dir(t));
  const std::string latest = is_directory(store.root()) ? store.latest() : "";
  int64_t step = 0;
  if (!latest.empty()) {
    const std::string dir = join_path(store.root(), latest);
    const Checkpoint checkpoint = load_checkpoint_dir(dir);
    step = checkpoint.state.step;
    GSA_CHECK(step <= t.steps, dir, " has ", step, " steps, more than train.steps = ", t.steps);
    {
      // from_tensors checks every name and shape against this run's model config.
      const LlamaModel loaded = LlamaModel::from_tensors(options_.model, checkpoint.model, device_);
      at::NoGradGuard no_grad;
      for (const auto& [name, p] : model_.parameters()) p.copy_(loaded.parameters().at(name));
    }
    optimizer_.load_state(checkpoint.optimizer, step);
    const std::pair<const char*, RetrievalTask*> generators[] = {{kTrainData, &task_}, {kEvalData, &eval_task_}};
    for (const auto& [name, task] : generators) {
      const auto it = checkpoint.state.generators.find(name);
      GSA_CHECK(it != checkpoint.state.generators.end(), dir, "/state.pbtxt: no state for generator '", name, "'");
      task->restore_state(it->second);
    }
  }
  if (groups_ != nullptr) {
    // Every rank read the store itself: they must agree on the step (max of step and of -step).
    at::Tensor steps = at::tensor({step, -step}, at::kLong).to(groups_->world->device());
    groups_->world->all_reduce(steps, ReduceOp::kMax);
    const at::Tensor host = steps.cpu();
    GSA_CHECK(host[0].item<int64_t>() == step && -host[1].item<int64_t>() == step, "resume: rank ",
              groups_->mesh.rank, " found step ", step, " but other ranks found steps up to ", host[0].item<int64_t>(),
              " (is ", t.output_dir, " the same folder on every node?)");
  }
  start_step_ = step;
  resumed_ = true;
  return step;
}

TrainReport Trainer::run(std::ostream& progress, bool live) {
  const TrainOptions& t = options_.train;
  TrainReport report;
  report.chance_accuracy = task_.chance_accuracy();
  const bool writes = !t.output_dir.empty() && is_root();
  std::unique_ptr<MetricsLog> metrics;
  std::unique_ptr<EventWriter> events;
  if (writes) {
    make_directories(t.output_dir);
    const CheckpointStore store(checkpoints_dir(t));
    store.remove_stale();
    const std::string latest = store.latest();
    GSA_CHECK(resumed_ || latest.empty(), store.root(), " already holds ", latest,
              ": pass --resume to continue from it, or choose another --output-dir");
    metrics = std::make_unique<MetricsLog>(join_path(t.output_dir, "metrics.jsonl"), start_step_);
    events = std::make_unique<EventWriter>(join_path(t.output_dir, "tensorboard"), start_step_);
  }
  // The held-out generator's position is part of a checkpoint: a resumed run does not evaluate again.
  if (start_step_ == 0) report.initial_eval_accuracy = evaluate(t.eval_batches);
  progress << "gsa train: " << model_.num_parameters() << " parameters, " << t.steps << " steps of "
           << t.batch_size << " sequences, mode " << (t.mode == TrainMode::kSelective ? "selective" : "cpt")
           << ", device " << device_
           << (groups_ ? str_cat(", ", groups_->mesh.world_size, " ranks: dp ", groups_->mesh.dp, " x sp ",
                                 groups_->mesh.sp, " over ", groups_->sp->name()) : std::string())
           << (start_step_ > 0 ? str_cat(", resumed at step ", start_step_) : std::string()) << "\n"
           << std::fixed << std::setprecision(3);
  if (start_step_ == 0) {
    progress << "  answer accuracy before training " << report.initial_eval_accuracy << " (chance "
             << report.chance_accuracy << ")\n";
  }
  const auto start = std::chrono::steady_clock::now();
  double window_loss = 0, window_acc = 0;
  int64_t window = 0;
  for (int64_t step = start_step_; step < t.steps; ++step) {
    StepMetrics m = train_step(step);
    GSA_CHECK(std::isfinite(m.loss), "loss became ", m.loss, " at step ", step);
    window_loss += m.loss;
    window_acc += m.accuracy;
    ++window;
    if (metrics) {
      metrics->append(m);
      events->add_scalars(step, {{"loss", m.loss}, {"accuracy", m.accuracy}, {"lr", m.lr}, {"grad_norm", m.grad_norm},
                                 {"tokens_per_s", m.tokens_per_second}});
    }
    const double elapsed = seconds_since(start);
    const double eta = elapsed / static_cast<double>(step + 1 - start_step_) * static_cast<double>(t.steps - step - 1);
    const std::string timing = str_cat("  ", format_duration(elapsed), "  ETA ", format_duration(eta));
    if (live) {
      progress << "\r\033[K  step " << step + 1 << "/" << t.steps << "  loss " << std::setprecision(4) << m.loss
               << "  " << std::setprecision(0) << m.tokens_per_second << " tok/s" << timing << std::flush;
    }
    if ((step + 1) % t.log_every == 0 || step + 1 == t.steps) {
      report.final_loss = window_loss / window;
      progress << (live ? "\r\033[K" : "") << "  step " << std::setw(5) << step + 1 << "/" << t.steps << "  loss "
               << std::setprecision(4) << report.final_loss << "  acc " << std::setprecision(3) << window_acc / window
               << "  lr " << std::scientific << std::setprecision(2) << m.lr << std::fixed << "  |g| "
               << std::setprecision(2) << m.grad_norm << "  " << std::setprecision(0) << m.tokens_per_second
               << " tok/s" << timing << "\n"
               << std::flush;
      window_loss = window_acc = 0;
      window = 0;
    }
    if (writes && t.checkpoint_every > 0 && (step + 1) % t.checkpoint_every == 0 && step + 1 < t.steps) {
      const std::string dir = save_checkpoint(step + 1);
      progress << (live ? "\r\033[K" : "") << "  checkpoint: " << dir << "\n";
    }
  }
  report.steps = t.steps;
  report.seconds = seconds_since(start);
  report.eval_accuracy = evaluate(t.eval_batches);
  progress << std::setprecision(3) << "  answer accuracy after training " << report.eval_accuracy << " (chance "
           << report.chance_accuracy << "), " << std::setprecision(1) << report.seconds << " s\n";
  if (writes) progress << "  checkpoint: " << save_checkpoint(t.steps) << "\n";
  return report;
}

std::string Trainer::save_checkpoint(int64_t steps) const {
  GSA_CHECK(!options_.train.output_dir.empty(), "save_checkpoint: train.output_dir is empty");
  Checkpoint checkpoint;
  checkpoint.state.step = steps;
  checkpoint.state.generators = {{kTrainData, task_.state()}, {kEvalData, eval_task_.state()}};
  checkpoint.model = model_.parameters();
  checkpoint.optimizer = optimizer_.state();
  checkpoint.optimizer_metadata = {{"step", std::to_string(optimizer_.steps())}};
  checkpoint.config_text = options_to_text(options_);
  return CheckpointStore(checkpoints_dir(options_.train)).save(checkpoint, options_.train.keep_checkpoints);
}

}  // namespace gsa
