// The training loop, one path for one process and for every rank of a dp x sp mesh (a single process is the mesh
// dp 1 x sp 1 over a LocalCommunicator): batches of the configured data source (data_source.h: synthetic tasks
// or a corpus, through the model's tokenizer), the sequence-parallel GSA forward in cpt or selective mode with
// the loss and answer accuracy of sp_model.h, AdamW with warmup + cosine, gradient clipping, progress lines,
// JSONL metrics and crash-safe checkpoints.
//
// Contract: run() trains steps [start, options.train.steps) and returns the final report; start is 0, or the
// step of the checkpoint that resume() loaded. With a non-empty train.output_dir it writes one JSON object per
// step to <output_dir>/metrics.jsonl (metrics_log.h: a fresh run starts it empty, a resumed one keeps the lines
// before its first step), TensorBoard scalars (loss, accuracy, lr, grad_norm, tokens_per_s) under
// <output_dir>/tensorboard (event_writer.h), and checkpoints into <output_dir>/checkpoints (runtime/checkpoint.h)
// every train.checkpoint_every steps and at the end, keeping the newest train.keep_checkpoints. A fresh run
// refuses an output dir that already holds a checkpoint (it names it and suggests --resume).
// resume() restores the model, the AdamW moments and step count, the step (hence the LR schedule position) and
// both data positions (train and held-out) from the latest checkpoint, so that on CPU the resumed run's per-step losses equal the
// uninterrupted run's bit for bit (same config, same thread count, same dp x sp); it returns the step (0: none
// found, a fresh start).
// evaluate() reports teacher-forced answer accuracy with inference attention (selection on when enabled); a
// corpus has no answers, so a corpus run reports none (NaN) and skips the held-out evaluation.
//
// Mixed precision: with model.dtype BFLOAT16 and train.master_weights FLOAT32 (the default) the forward and
// backward run on bf16 parameters while AdamW updates fp32 master weights with fp32 moments and fp32 gradients
// (adamw.h); checkpoints hold the masters, so a resume continues from the exact fp32 state. master_weights equal
// to model.dtype updates the parameters in place (pure bf16).
// train.activation_checkpointing recomputes every decoder layer in backward (runtime/activation_checkpoint.h):
// the same losses and gradients, less activation memory.
// Gradient accumulation (train.grad_accumulation = A): a step's batch_size sequences run as A micro-batches of
// batch_size / A rows in order; each micro-batch's loss is weighted by its share of the step's labelled tokens,
// so the update equals the whole batch's at once up to float rounding.
//
// Distributed (groups given; every rank of the world runs the same Trainer): of each global batch of the data
// stream, dp replica d reads rows [d * B/dp, (d + 1) * B/dp) only, its sp group splits them at top-level sections
// (sp_model.h), gradients are summed over the world in buckets during backward (gradient_sync.h), and every rank
// applies the same update, so parameters stay identical; the loss and accuracy are those of the global batch.
// Only world rank 0 writes metrics and checkpoints; every rank reads the checkpoint in resume() (the output dir
// must be visible to every rank), and the ranks check that they resumed the same step.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>

#include <ATen/ATen.h>

#include "gsa/config/options.h"
#include "gsa/parallel/gradient_sync.h"
#include "gsa/parallel/process_groups.h"
#include "gsa/runtime/llama_model.h"
#include "gsa/runtime/model_tokenizer.h"
#include "gsa/trainer/adamw.h"
#include "gsa/trainer/lr_schedule.h"
#include "gsa/trainer/metrics_log.h"
#include "gsa/trainer/data_source.h"

namespace gsa {

struct TrainReport {
  int64_t steps = 0;
  double final_loss = 0;        // mean over the last log window
  double initial_eval_accuracy = 0;
  double eval_accuracy = 0;     // held-out batches after training
  double chance_accuracy = 0;
  double seconds = 0;
};

class Trainer {
 public:
  // groups: nullptr = one process on `device` (dp 1 x sp 1); else the mesh's communicators (tensors on
  // groups->device).
  Trainer(const GsaOptions& options, at::Device device, const ProcessGroups* groups = nullptr);

  // live: also redraw one status line per step ("\r"; for a terminal).
  TrainReport run(std::ostream& progress, bool live = false);
  int64_t resume();
  // Copies the model weights of checkpoint `path` (resolve_checkpoint; e.g. made by gsa import) into the model;
  // its model config must equal this run's (with_model_of_checkpoint). Optimizer, step and data start fresh.
  void init_from(const std::string& path);
  double evaluate(int64_t batches);
  // Checkpoints the current state as `steps` completed steps into <output_dir>/checkpoints; returns its folder.
  std::string save_checkpoint(int64_t steps) const;

  const LlamaModel& model() const { return model_; }
  const std::shared_ptr<const ModelTokenizer>& tokenizer() const { return tokenizer_; }

 private:
  StepMetrics train_step(int64_t step);
  bool is_root() const { return groups_->mesh.rank == 0; }
  // This replica's rows of the next global batch of `source`, in train.grad_accumulation micro-batches: with
  // `backward` each micro-batch's loss is back-propagated (gradients summed in GradientSync, finish() left to the
  // caller); returns the global batch's loss and whole-answer accuracy.
  struct BatchResult {
    double loss_value = 0;
    double accuracy = 0;  // right answers / answers of the global batch, over its micro-batches
    int64_t tokens = 0;   // positions of the global batch
  };
  BatchResult run_batch(DataSource& source, bool selective, bool backward);

  GsaOptions options_;
  ProcessGroups own_groups_;  // dp 1 x sp 1 when no mesh is given
  const ProcessGroups* groups_ = nullptr;
  at::Device device_;
  std::shared_ptr<const ModelTokenizer> tokenizer_;
  LlamaModel model_;
  AdamW optimizer_;
  std::unique_ptr<DataSource> data_;
  std::unique_ptr<DataSource> eval_data_;  // held-out answers; none for a corpus
  LrSchedule schedule_;
  std::unique_ptr<GradientSync> gradient_sync_;
  int64_t start_step_ = 0;                         // set by resume()
  bool resumed_ = false;
};

}  // namespace gsa
