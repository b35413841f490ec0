// The single-process training loop (the distributed one builds on it): synthetic retrieval batches, the GSA
// forward in cpt or selective mode, next-token cross-entropy on the labelled positions, AdamW with warmup +
// cosine, gradient clipping, progress lines, JSONL metrics and an atomic checkpoint at the end.
//
// Contract: run() trains options.train.steps steps and returns the final report; with a non-empty
// train.output_dir it appends one JSON object per step to <output_dir>/metrics.jsonl and writes the checkpoint
// <output_dir>/checkpoint (model.safetensors with Hugging Face names, optimizer.safetensors, config.pbtxt),
// built in a temporary directory and renamed into place so a crash never leaves a half checkpoint.
// evaluate() reports teacher-forced answer accuracy with inference attention (selection on when enabled).
//
// Distributed (groups given; every rank of the world runs the same Trainer): every rank draws the same global
// batch; dp replica d takes rows [d * B/dp, (d + 1) * B/dp), its sp group splits them at top-level sections
// (sp_model.h), gradients are summed over the world in buckets during backward (gradient_sync.h), and every rank
// applies the same update, so parameters stay identical; the loss and accuracy are those of the global batch.
// Only world rank 0 writes metrics and checkpoints.
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
#include "gsa/trainer/retrieval_task.h"

namespace gsa {

struct StepMetrics {
  int64_t step = 0;
  double loss = 0;
  double accuracy = 0;      // whole answers right, teacher forced, this batch
  double lr = 0;
  double grad_norm = 0;
  double tokens_per_second = 0;
};

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

  TrainReport run(std::ostream& progress);
  double evaluate(int64_t batches);
  void save_checkpoint(const std::string& dir) const;

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
};

// Loads a checkpoint written by Trainer::save_checkpoint: the config (config.pbtxt) and the model weights.
LlamaModel load_checkpoint(const std::string& dir, at::Device device, GsaOptions* options);

// Whole-answer accuracy: logits [B, T, V], labels [B, T] (-100 ignored) -> fraction of rows whose every
// labelled position is predicted right.
double answer_accuracy(const at::Tensor& logits, const at::Tensor& labels);

}  // namespace gsa
