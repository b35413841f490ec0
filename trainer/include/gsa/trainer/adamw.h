// AdamW (decoupled weight decay), the optimizer of the reference's training runs. Implemented here because the
// trainer keeps parameters in a name -> tensor map and checkpoints the optimizer state by the same names.
//
// Contract: step(lr) updates every parameter that has a gradient: m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2,
// p -= lr * (m / (1-b1^t) / (sqrt(v / (1-b2^t)) + eps) + wd * p); state is kept in fp32. zero_grad() clears
// the gradients. clip_grad_norm() scales all gradients so their global L2 norm is at most max_norm and returns
// the norm before clipping. load_state(state(), steps()) restores the moments and the step count exactly; a
// missing or misshapen moment throws gsa::Error naming it.
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

 private:
  TensorMap params_;
  AdamWOptions options_;
  std::map<std::string, at::Tensor> exp_avg_, exp_avg_sq_;
  int64_t step_ = 0;
};

}  // namespace gsa
