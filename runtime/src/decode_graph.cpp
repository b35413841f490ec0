#include "gsa/runtime/decode_graph.h"

#include "gsa/runtime/error.h"

#ifdef GSA_HAVE_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGraphsC10Utils.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace gsa {

#ifdef GSA_HAVE_CUDA
struct DecodeStepGraph::Captured {
  at::cuda::CUDAGraph graph;
  at::Tensor output;  // the captured forward's result buffer, rewritten by each replay
};
#else
struct DecodeStepGraph::Captured {};
#endif

DecodeStepGraph::DecodeStepGraph() = default;
DecodeStepGraph::~DecodeStepGraph() = default;

bool DecodeStepGraph::usable(const at::Device& device, const AttentionOptions& options) {
#ifdef GSA_HAVE_CUDA
  return device.is_cuda() && options.cuda_graphs;
#else
  (void)device;
  (void)options;
  return false;
#endif
}

bool DecodeStepGraph::capturing() {
#ifdef GSA_HAVE_CUDA
  if (!at::hasCUDA()) return false;
  return c10::cuda::currentStreamCaptureStatusMayInitCtx() != c10::cuda::CaptureStatus::None;
#else
  return false;
#endif
}

void DecodeStepGraph::reset() {
  captured_.reset();
  calls_since_reset_ = 0;
}

at::Tensor DecodeStepGraph::run(const std::function<at::Tensor()>& forward, bool copy_result) {
#ifdef GSA_HAVE_CUDA
  if (captured_ == nullptr && calls_since_reset_ == 0) {
    ++calls_since_reset_;
    return forward();  // warm-up, eager
  }
  if (captured_ == nullptr) {
    auto captured = std::make_unique<Captured>();
    const c10::cuda::CUDAStream current = c10::cuda::getCurrentCUDAStream();
    c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool();
    // The side stream starts after everything queued so far (the in-place plan upload of this step).
    at::cuda::CUDAEvent before;
    before.record(current);
    before.block(side);
    {
      const c10::cuda::CUDAStreamGuard on_side(side);
      captured->graph.capture_begin();
      try {
        captured->output = forward();
      } catch (...) {
        // End the capture before the error leaves: a stream left capturing makes every later synchronous CUDA
        // call of the process fail ("operation not permitted when stream is capturing").
        try {
          captured->graph.capture_end();
        } catch (...) {
        }
        throw;
      }
      captured->graph.capture_end();
    }
    at::cuda::CUDAEvent after;
    after.record(side);
    after.block(current);
    captured_ = std::move(captured);
    ++captures_;
  }
  captured_->graph.replay();
  return copy_result ? captured_->output.clone() : captured_->output;
#else
  (void)copy_result;
  return forward();
#endif
}

}  // namespace gsa
