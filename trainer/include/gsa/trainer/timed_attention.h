// The attention share of a training step, timed around the attention calls themselves (gsa bench train).
//
// TimedAttention wraps the LayerAttention a forward runs with and records device-time marks on the compute
// stream (CUDA events on CUDA tensors, the host clock on the CPU, where every op completes before it returns):
//   forward   around every attend() call, including the recomputation that an activation-checkpointed layer
//             runs inside backward;
//   backward  from the start of the backward node that produced attend()'s output (a hook on the output runs
//             just before it) to the end of the attention's backward: q, k and v enter the inner attention through
//             identity views made in attend(), the last nodes created before the attention's, so the autograd
//             engine (latest-created ready node first) runs them right after the attention's own backward nodes,
//             and hooks on the views mark that moment.
// seconds() synchronises the device and returns the sum of all intervals since reset(). The marks are recorded
// in stream order, so no synchronisation perturbs the step. Bound of the method: a ready node created after the
// views but outside the attention (none in LlamaModel's layer) would be counted as attention.
#pragma once

#include <memory>
#include <vector>

#include <ATen/ATen.h>

#include "gsa/runtime/llama_model.h"

namespace gsa {

// Waits for the device's queued work (CUDA); nothing to wait for on the CPU.
void synchronize_device(at::Device device);

class TimedAttention final : public LayerAttention {
 public:
  TimedAttention(LayerAttention& inner, at::Device device) : inner_(inner), device_(device) {}

  at::Tensor attend(int64_t layer, bool layer_selects, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                    double scale) override;

  void reset() { intervals_.clear(); }
  double seconds();  // synchronises the device

  // One mark on the device stream (an event on CUDA, the host clock on the CPU).
  class Mark;
  struct Interval {
    std::shared_ptr<Mark> begin, end;
  };

 private:
  std::shared_ptr<Mark> mark() const;

  LayerAttention& inner_;
  at::Device device_;
  std::vector<std::shared_ptr<Interval>> intervals_;
};

}  // namespace gsa
