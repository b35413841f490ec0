#include "gsa/trainer/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iomanip>

#include "gsa/config/config_loader.h"
#include "gsa/parallel/local_communicator.h"
#include "gsa/parallel/sp_model.h"
#include "gsa/runtime/checkpoint.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/file_util.h"
#include "gsa/trainer/event_writer.h"
#include "gsa/trainer/synthetic_tasks.h"

namespace gsa {
namespace {

AdamWOptions adamw_options(const TrainOptions& t) {
  AdamWOptions o;
  o.beta1 = t.beta1;
  o.beta2 = t.beta2;
  o.weight_decay = t.weight_decay;
  o.master_weights = t.master_weights == DType::kFloat32;
  return o;
}

// Names of the data positions in a checkpoint's state.
constexpr char kTrainData[] = "train_task";
constexpr char kEvalData[] = "eval_task";

// The held-out batches score the task's answers only: no auxiliary copy examples (synthetic_tasks.h).
GsaOptions held_out_options(GsaOptions options) {
  options.data = retrieval_only(options.data);
  return options;
}

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

}  // namespace

Trainer::Trainer(const GsaOptions& options, at::Device device, const ProcessGroups* groups)
    : options_(options),
      own_groups_(groups == nullptr ? make_single_process_groups(device) : ProcessGroups{}),
      groups_(groups != nullptr ? groups : &own_groups_),
      device_(groups_->device),
      tokenizer_(make_model_tokenizer(options)),
      model_(LlamaModel::create(options.model, options.train.seed, device_)),
      optimizer_((model_.set_requires_grad(true), model_.parameters()), adamw_options(options.train)),
      data_(make_data_source(options, tokenizer_, static_cast<uint64_t>(options.train.seed) + 1)),
      eval_data_(data_->chance_accuracy()  // held-out answers: synthetic tasks only
                     ? make_data_source(held_out_options(options), tokenizer_,
                                        static_cast<uint64_t>(options.train.seed) + 0x5eed)
                     : nullptr),
      schedule_{options.train.lr, options.train.min_lr_ratio, options.train.warmup_steps, options.train.steps,
                options.train.decay_fraction} {
  const int64_t micro_rows = options.train.batch_size / options.train.grad_accumulation;
  GSA_CHECK(micro_rows % groups_->mesh.dp == 0, "train.batch_size / train.grad_accumulation = ", micro_rows,
            " rows per micro-batch must be a multiple of dp ", groups_->mesh.dp,
            " (each replica takes an equal share of the rows)");
  gradient_sync_ = std::make_unique<GradientSync>(model_.parameter_list(), groups_->world);
}

Trainer::BatchResult Trainer::run_batch(DataSource& source, bool selective, bool backward) {
  const DeviceMesh& mesh = groups_->mesh;
  const int64_t micro_batches = options_.train.grad_accumulation;
  const int64_t global_rows = options_.train.batch_size / micro_batches, rows = global_rows / mesh.dp;
  const int64_t first = mesh.dp_rank() * rows;
  // This replica's rows of each micro-batch (the sequences of the step in order, micro-batch by micro-batch).
  std::vector<TaskBatch> batches;
  for (int64_t m = 0; m < micro_batches; ++m) batches.push_back(source.next_batch(global_rows, first, rows, device_));
  // Labelled tokens of the whole step: each micro-batch's loss is weighted by its share, so the accumulated
  // gradient is that of the mean over the whole step (the sp ranks of a replica hold the same rows).
  int64_t step_labelled = 0;
  if (micro_batches > 1) {
    int64_t mine = 0;
    for (const TaskBatch& b : batches) mine += (b.labels != -100).sum().item<int64_t>();
    step_labelled = groups_->world->all_reduce_int(mine, ReduceOp::kSum) / mesh.sp;
  }
  BatchResult r;
  AnswerTally answers;
  for (int64_t m = 0; m < micro_batches; ++m) {
    const TaskBatch& batch = batches[static_cast<size_t>(m)];
    const SequenceShards shards = shard_at_sections(batch.layouts, mesh.sp);  // this replica's rows, cut over sp
    SpLossResult result =
        sp_next_token_loss(model_, batch.layouts, batch.labels, shards, options_.attention, selective, *groups_->sp,
                           *groups_->world, backward && options_.train.activation_checkpointing);
    const double weight =
        micro_batches > 1 ? static_cast<double>(result.labelled) / static_cast<double>(step_labelled) : 1.0;
    if (backward) {
      gradient_sync_->set_sync(m + 1 == micro_batches);  // the last micro-batch's backward all-reduces the sum
      (micro_batches > 1 ? result.loss * weight : result.loss).backward();
    }
    r.loss_value += result.global_loss * weight;
    const AnswerTally tally = sp_answer_tally(result, first, global_rows, *groups_->world);
    answers.correct += tally.correct;
    answers.answers += tally.answers;
    r.tokens += global_rows * batch.labels.size(1);
  }
  r.accuracy = answers.accuracy();
  return r;
}

StepMetrics Trainer::train_step(int64_t step) {
  const TrainOptions& t = options_.train;
  const auto start = std::chrono::steady_clock::now();
  optimizer_.zero_grad();
  BatchResult r = run_batch(*data_, t.mode == TrainMode::kSelective, /*backward=*/true);
  gradient_sync_->finish();  // summed over dp x sp: every rank holds the same gradients
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
  if (!eval_data_) return std::nan("");  // a corpus: no answers to score
  at::NoGradGuard no_grad;
  double total = 0;
  for (int64_t i = 0; i < batches; ++i) {
    total += run_batch(*eval_data_, options_.attention.selection.enabled, /*backward=*/false).accuracy;
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
  optimizer_.load_master_weights(source.parameters());  // the parameters and their fp32 masters
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
    // Every name and shape against this run's model config, then the saved weights (fp32 masters of a bf16
    // model) into the optimizer's masters and, rounded, the parameters.
    check_llama_tensors(options_.model, checkpoint.model, dir);
    optimizer_.load_master_weights(checkpoint.model);
    optimizer_.load_state(checkpoint.optimizer, step);
    const std::pair<const char*, DataSource*> sources[] = {{kTrainData, data_.get()}, {kEvalData, eval_data_.get()}};
    for (const auto& [name, source] : sources) {
      if (source == nullptr) continue;
      const auto it = checkpoint.state.generators.find(name);
      GSA_CHECK(it != checkpoint.state.generators.end(), dir, "/state.pbtxt: no state for data source '", name, "'");
      source->restore_state(it->second);
    }
  }
  {
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
  report.chance_accuracy = data_->chance_accuracy().value_or(std::nan(""));
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
  // The held-out position is part of a checkpoint: a resumed run does not evaluate again. A corpus has no answers.
  const bool answers = data_->chance_accuracy().has_value();
  if (start_step_ == 0 && answers) report.initial_eval_accuracy = evaluate(t.eval_batches);
  progress << "gsa train: " << model_.num_parameters() << " parameters, " << t.steps << " steps of "
           << t.batch_size << " sequences, mode " << (t.mode == TrainMode::kSelective ? "selective" : "cpt")
           << ", device " << device_
           << (groups_->mesh.world_size > 1
                   ? str_cat(", ", groups_->mesh.world_size, " ranks: dp ", groups_->mesh.dp, " x sp ",
                             groups_->mesh.sp, " over ", groups_->sp->name())
                   : std::string())
           << (start_step_ > 0 ? str_cat(", resumed at step ", start_step_)
               : resumed_     ? str_cat(", --resume found no checkpoint in ", checkpoints_dir(t), ": from step 0")
                              : std::string())
           << "\n"
           << std::fixed << std::setprecision(3);
  if (start_step_ == 0 && answers) {
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
  if (answers) {
    progress << std::setprecision(3) << "  answer accuracy after training " << report.eval_accuracy << " (chance "
             << report.chance_accuracy << "), ";
  } else {
    progress << "  trained on " << options_.data.corpus.path << ", ";
  }
  progress << std::setprecision(1) << report.seconds << " s\n";
  if (writes) progress << "  checkpoint: " << save_checkpoint(t.steps) << "\n";
  return report;
}

std::string Trainer::save_checkpoint(int64_t steps) const {
  GSA_CHECK(!options_.train.output_dir.empty(), "save_checkpoint: train.output_dir is empty");
  Checkpoint checkpoint;
  checkpoint.state.step = steps;
  checkpoint.state.generators = {{kTrainData, data_->state()}};
  if (eval_data_) checkpoint.state.generators[kEvalData] = eval_data_->state();
  checkpoint.model = optimizer_.master_weights();  // fp32 masters of a bf16 model: the resume is exact
  checkpoint.optimizer = optimizer_.state();
  checkpoint.optimizer_metadata = {{"step", std::to_string(optimizer_.steps())}};
  checkpoint.config_text = options_to_text(options_);
  return CheckpointStore(checkpoints_dir(options_.train)).save(checkpoint, options_.train.keep_checkpoints);
}

}  // namespace gsa
