// AdamW (decoupled weight decay), the optimizer of the reference's training runs. Implemented here because the
// trainer keeps parameters in a name -> tensor map and checkpoints the optimizer state by the same names.
//
// Contract: step(lr) updates every parameter that has a gradient: g = fp32(grad) (times the clip scale),
// m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2, w -= lr * (m / (1-b1^t) / (sqrt(v / (1-b2^t)) + eps) + wd * w);
// moments are kept in fp32. w is the parameter itself, or with master_weights and a parameter narrower than fp32
// (bf16), an fp32 master copy that step() updates and then rounds into the parameter: the forward and backward
// run on the bf16 copy, while updates below bf16 resolution accumulate in the master instead of being rounded
// away. zero_grad() clears the gradients. clip_grad_norm() returns the global L2 norm of all gradients (in fp32)
// and makes the next step() scale them by max_norm / (norm + 1e-6) when the norm is above max_norm (applied to
// the fp32 gradient, so a bf16 gradient is not rounded again). load_state(state(), steps()) restores the moments
// and the step count exactly; master_weights() are the weights the optimizer updates (fp32 masters, or the
// parameters), the ones a checkpoint must save for an exact resume, and load_master_weights() restores them (and
// the parameters, rounded to their dtype). A missing or misshapen tensor throws gsa::Error naming it.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <ATen/ATen.h>

#include "gsa/runtime/safetensors.h"

namespace gsa {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.98;
  double eps = 1e-8;
  double weight_decay = 0.0;
  // Keep fp32 master weights for parameters narrower than fp32 (TrainOptions::master_weights == kFloat32).
  bool master_weights = true;
};

class AdamW {
 public:
  AdamW(const TensorMap& params, const AdamWOptions& options);
  void step(double lr);
  void zero_grad();
  double clip_grad_norm(double max_norm);
  int64_t steps() const { return step_; }
  // Moments by parameter name ("<name>.exp_avg", "<name>.exp_avg_sq") for checkpoints.
  TensorMap state() const;
  void load_state(const TensorMap& state, int64_t steps);
  // By parameter name: the fp32 master where one is kept, else the parameter itself.
  TensorMap master_weights() const;
  // Sets every master (or parameter) from `weights` (any dtype, same names and shapes) and the parameters to
  // their rounding.
  void load_master_weights(const TensorMap& weights);
  bool has_masters() const { return !masters_.empty(); }

 private:
  TensorMap params_;
  AdamWOptions options_;
  std::map<std::string, at::Tensor> exp_avg_, exp_avg_sq_;
  std::map<std::string, at::Tensor> masters_;  // fp32, only for parameters narrower than fp32
  double clip_scale_ = 1.0;                    // set by clip_grad_norm, used and reset by step
  int64_t step_ = 0;
};

}  // namespace gsa
