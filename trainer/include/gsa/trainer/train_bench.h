// The training-step benchmark behind `gsa bench train`: one Llama-shaped model with random weights, trained for a
// few steps on random-token sequences in two attention modes in the same process, same model otherwise:
//   kGsa    GSA selective training as the trainer runs it (sp 1): each sequence is one document, the gisted
//           context then a raw suffix of suffix_tokens whose queries select chunks in layers >=
//           first_selective_layer; attention through gsa_attention (the CUDA kernels on CUDA bf16 tensors);
//   kDense  the same raw tokens laid out without gists, dense causal attention through SDPA (sdpa_attention.h).
// A step is: zero the gradients, [GSA: build the attention plan, as the trainer does for every batch], forward
// (activation checkpointing per layer when train.activation_checkpointing), the next-token loss over every
// labelled position with the LM head applied chunk by chunk (chunked_loss.h), backward, gradient clipping and the
// AdamW update (fp32 master weights for a bf16 model when train.master_weights is FLOAT32).
//
// Contract: run() restores the initial weights and starts a fresh optimizer, so every (mode, length) starts from
// the same state and the first step's loss is that of the initial model on the batch of train_bench_batch().
// It runs `warmup` steps, then `steps` timed steps, each ended by a device synchronisation; step_seconds is
// their mean wall time, attention_seconds the mean time inside attention forward and backward (timed on the
// device stream around the attention calls, the recomputation in backward included: timed_attention.h),
// communication_seconds 0 (one process: no collective moves data), other = step - attention - communication.
// model_flops = 6 * matmul_params * positions + 12 * Hq * D * layers * attention_pairs (forward 1x + backward 2x,
// recomputation not counted), matmul_params = every weight matrix (projections, MLP, LM head; not the embedding
// lookup nor the norms), attention_pairs = the allowed (query, key) pairs of the mode's mask summed over the rows
// (dense: T(T+1)/2 per row; GSA: the gist mask's pairs, the suffix queries' selected keys counted as the gist
// mask's, a share below 1% at the benchmark's lengths). Peak memory: the caching allocator's peak during the timed
// steps on CUDA, -1 (not measured) on the CPU.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "gsa/config/options.h"
#include "gsa/runtime/llama_model.h"
#include "gsa/runtime/op_profile.h"
#include "gsa/runtime/safetensors.h"
#include "gsa/trainer/task_batch.h"

namespace gsa {

enum class BenchAttention { kGsa, kDense };
const char* bench_attention_name(BenchAttention mode);  // "gsa" | "dense"

struct TrainBenchShape {
  int64_t tokens = 0;          // raw tokens per sequence (context + suffix); > suffix_tokens + gist.sink
  int64_t suffix_tokens = 256; // >= 1 raw suffix tokens per sequence: GSA's selective queries
  int64_t batch = 1;           // >= 1 sequences per step
  int64_t warmup = 1;          // >= 0 untimed steps
  int64_t steps = 2;           // >= 1 timed steps
  int64_t loss_chunk = 4096;   // >= 1 positions per LM-head chunk
  bool profile = false;        // after the timed steps, one more step under the op profiler (op_profile.h)
  std::string profile_trace;   // that step's Chrome trace file ("" = none)
};

struct TrainBenchResult {
  BenchAttention mode = BenchAttention::kGsa;
  int64_t tokens = 0;               // raw tokens per step (batch x tokens)
  int64_t positions = 0;            // positions per step (GSA: raw tokens + gists)
  int64_t attention_pairs = 0;      // allowed (query, key) pairs per layer per step
  double step_seconds = 0;
  double attention_seconds = 0;
  double communication_seconds = 0;
  double other_seconds = 0;
  double tokens_per_second = 0;     // tokens / step_seconds
  double model_flops = 0;           // per step
  double attention_flops = 0;       // per step, part of model_flops
  int64_t peak_bytes = -1;          // -1: not measured (CPU)
  double first_loss = 0;            // mean loss of the first step (the initial weights)
  double last_loss = 0;             // mean loss of the last timed step
  std::optional<OpProfile> profile; // the profiled step (shape.profile), not part of the timings above
};

// The batch a run trains on: `shape.batch` sequences of random text ids (below the gist ids) from `seed`, laid
// out for the mode, with next-token labels at every position (task_batch.h make_lm_batch).
TaskBatch train_bench_batch(const GsaOptions& options, BenchAttention mode, const TrainBenchShape& shape,
                            uint64_t seed, at::Device device);

// Allowed (query, key) pairs of the rows' gist mask (mask_predicate.h), counted in blocks of queries on `device`.
int64_t count_allowed_pairs(const std::vector<GistLayout>& rows, at::Device device);

class TrainBench {
 public:
  // options: model (dtype), gist, attention (selection, backend), train (optimizer, clipping, master_weights,
  // activation_checkpointing, seed: the initial weights and the data).
  TrainBench(const GsaOptions& options, at::Device device);
  TrainBenchResult run(BenchAttention mode, const TrainBenchShape& shape);

  const LlamaModel& model() const { return model_; }
  const TensorMap& initial_weights() const { return initial_; }
  // Weight matrices' parameter count (model_flops' matmul_params).
  int64_t matmul_params() const;

 private:
  GsaOptions options_;
  at::Device device_;
  LlamaModel model_;
  TensorMap initial_;  // the parameters as created, restored by every run
};

}  // namespace gsa
