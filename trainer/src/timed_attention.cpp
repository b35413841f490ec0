#include "gsa/trainer/timed_attention.h"

#include <chrono>

#ifdef GSA_HAVE_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#endif

#include "gsa/runtime/error.h"

namespace gsa {

void synchronize_device(at::Device device) {
  if (!device.is_cuda()) return;
#ifdef GSA_HAVE_CUDA
  const c10::cuda::CUDAGuard guard(device);
  c10::cuda::device_synchronize();
#else
  throw Error("synchronize_device: CUDA tensors, but this build has no CUDA");
#endif
}

class TimedAttention::Mark {
 public:
  explicit Mark(at::Device device) {
    if (device.is_cuda()) {
#ifdef GSA_HAVE_CUDA
      const c10::cuda::CUDAGuard guard(device);
      event_ = std::make_unique<at::cuda::CUDAEvent>(cudaEventDefault);  // timing enabled
      event_->record(at::cuda::getCurrentCUDAStream(device.index()));
      return;
#else
      throw Error("TimedAttention: CUDA tensors, but this build has no CUDA");
#endif
    }
    host_ = std::chrono::steady_clock::now();
  }

  // Seconds from this mark to `later` (both completed).
  double seconds_to(const Mark& later) const {
#ifdef GSA_HAVE_CUDA
    if (event_) return static_cast<double>(event_->elapsed_time(*later.event_)) * 1e-3;
#endif
    return std::chrono::duration<double>(later.host_ - host_).count();
  }

 private:
#ifdef GSA_HAVE_CUDA
  std::unique_ptr<at::cuda::CUDAEvent> event_;
#endif
  std::chrono::steady_clock::time_point host_;
};

std::shared_ptr<TimedAttention::Mark> TimedAttention::mark() const { return std::make_shared<Mark>(device_); }

at::Tensor TimedAttention::attend(int64_t layer, bool layer_selects, const at::Tensor& q, const at::Tensor& k,
                                  const at::Tensor& v, double scale) {
  // With gradients: the inputs pass through identity views made here, whose backward nodes are the last ones
  // created before the attention's, so the autograd engine runs them (and their hooks, which mark the end of the
  // attention's backward) right after the attention's own backward nodes.
  const bool records = at::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad());
  std::shared_ptr<Interval> backward;
  at::Tensor qi = q, ki = k, vi = v;
  if (records) {
    backward = std::make_shared<Interval>();
    const at::Device device = device_;
    for (at::Tensor* input : {&qi, &ki, &vi}) {
      if (!input->requires_grad()) continue;
      *input = input->view_as(*input);
      input->register_hook([backward, device](const at::Tensor&) { backward->end = std::make_shared<Mark>(device); });
    }
  }
  auto forward = std::make_shared<Interval>();
  forward->begin = mark();
  at::Tensor out = inner_.attend(layer, layer_selects, qi, ki, vi, scale);  // [B, Hq, Tq, D]
  forward->end = mark();
  intervals_.push_back(forward);
  if (records && out.requires_grad()) {
    // The hook runs just before the backward node that made `out`: the attention's backward starts there.
    out.register_hook([backward, device = device_](const at::Tensor&) {
      backward->begin = std::make_shared<Mark>(device);
    });
    intervals_.push_back(backward);
  }
  return out;
}

double TimedAttention::seconds() {
  synchronize_device(device_);
  double total = 0;
  for (const auto& interval : intervals_) {
    // A backward interval that never ran (no backward yet, or no input needed a gradient) adds nothing.
    if (interval->begin && interval->end) total += interval->begin->seconds_to(*interval->end);
  }
  return total;
}

}  // namespace gsa
