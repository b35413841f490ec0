// The single-process training loop (the distributed one builds on it): synthetic retrieval batches, the GSA
// forward in cpt or selective mode, next-token cross-entropy on the labelled positions, AdamW with warmup +
// cosine, gradient clipping, progress lines, JSONL metrics and crash-safe checkpoints.
//
// Contract: run() trains steps [start, options.train.steps) and returns the final report; start is 0, or the
// step of the checkpoint that resume() loaded. With a non-empty train.output_dir it writes one JSON object per
// step to <output_dir>/metrics.jsonl (metrics_log.h: a fresh run starts it empty, a resumed one keeps the lines
// before its first step), TensorBoard scalars (loss, accuracy, lr, grad_norm, tokens_per_s) under
// <output_dir>/tensorboard (event_writer.h), and checkpoints into <output_dir>/checkpoints (runtime/checkpoint.h)
// every train.checkpoint_every steps and at the end, keeping the newest train.keep_checkpoints. A fresh run
// refuses an output dir that already holds a checkpoint (it names it and suggests --resume).
// resume() restores the model, the AdamW moments and step count, the step (hence the LR schedule position) and
// both data generators from the latest checkpoint, so that on CPU the resumed run's per-step losses equal the
// uninterrupted run's bit for bit (same config, same thread count, same dp x sp); it returns the step (0: none
// found, a fresh start).
// evaluate() reports teacher-forced answer accuracy with inference attention (selection on when enabled).
//
// Distributed (groups given; every rank of the world runs the same Trainer): every rank draws the same global
// batch; dp replica d takes rows [d * B/dp, (d + 1) * B/dp), its sp group splits them at top-level sections
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
#include "gsa/trainer/adamw.h"
#include "gsa/trainer/lr_schedule.h"
#include "gsa/trainer/metrics_log.h"
#include "gsa/trainer/retrieval_task.h"

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
  // groups: nullptr = one process on `device`; else the mesh's communicators (tensors on groups->device).
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
  RetrievalTask& task() { return task_; }

 private:
  StepMetrics train_step(int64_t step);
  bool is_root() const { return groups_ == nullptr || groups_->mesh.rank == 0; }
  // The global batch's loss (with autograd) and whole-answer accuracy, on one process or the mesh.
  struct BatchResult {
    at::Tensor loss;  // this rank's differentiable share
    double loss_value = 0;
    double accuracy = 0;
    int64_t tokens = 0;  // positions of the global batch
  };
  BatchResult run_batch(const TaskBatch& batch, bool selective);

  GsaOptions options_;
  at::Device device_;
  const ProcessGroups* groups_ = nullptr;
  LlamaModel model_;
  AdamW optimizer_;
  RetrievalTask task_;
  RetrievalTask eval_task_;
  LrSchedule schedule_;
  std::unique_ptr<GradientSync> gradient_sync_;  // distributed only
  int64_t start_step_ = 0;                         // set by resume()
  bool resumed_ = false;
};

// Whole-answer accuracy: logits [B, T, V], labels [B, T] (-100 ignored) -> fraction of rows whose every
// labelled position is predicted right.
double answer_accuracy(const at::Tensor& logits, const at::Tensor& labels);

}  // namespace gsa
