// The attention share of a training step, timed around the attention calls themselves (gsa bench train).
//
// TimedAttention wraps the LayerAttention a forward runs with and records device-time marks on the compute
// stream (CUDA events on CUDA tensors, the host clock on the CPU, where every op completes before it returns):
//   forward   around every attend() call, including the recomputation that an activation-checkpointed layer
//             runs inside backward;
//   backward  from the moment the gradient of attend()'s output arrives (a hook on the output) to the moment the
//             last of the gradients of its q, k and v is produced (hooks on the inputs): the attention's own
//             backward nodes run in between, since q, k and v (post-RoPE) feed nothing else.
// seconds() synchronises the device and returns the sum of all intervals since reset(). The marks are recorded
// in stream order, so no synchronisation perturbs the step; the autograd engine may schedule an unrelated ready
// node inside a backward interval, which the docs state as the method's bound (docs/PERFORMANCE.md).
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
