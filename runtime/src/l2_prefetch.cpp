#include "gsa/runtime/l2_prefetch.h"

#include <algorithm>

#include "gsa/kernels/l2_prefetch.h"
#include "gsa/runtime/env_knob.h"
#include "gsa/runtime/error.h"
#include "kernel_tensors.h"

#ifdef GSA_HAVE_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace gsa {

void prefetch_to_l2(const std::vector<at::Tensor>& tensors, int64_t max_bytes) {
  GSA_CHECK(max_bytes >= 0, "prefetch_to_l2: max_bytes must be >= 0, got ", max_bytes);
  GSA_CHECK(tensors.size() <= size_t{kernels::kL2PrefetchMaxSpans}, "prefetch_to_l2: at most ",
            kernels::kL2PrefetchMaxSpans, " tensors, got ", tensors.size());
  if (tensors.empty() || max_bytes == 0 || !tensors.front().is_cuda()) return;
  const at::Device device = tensors.front().device();
  kernels::L2PrefetchParams p;
  int64_t left = max_bytes;
  for (const at::Tensor& t : tensors) {
    GSA_CHECK(t.defined() && t.device() == device && t.is_contiguous(), "prefetch_to_l2: every tensor must be ",
              "contiguous on ", device);
    const int64_t bytes = std::min<int64_t>(left, static_cast<int64_t>(t.nbytes()));
    if (bytes <= 0) break;
    p.spans[p.count++] = kernels::L2PrefetchSpan{t.data_ptr(), bytes};
    left -= bytes;
  }
  const kernels::Status status = run_kernel(
      device, [&](void* stream) { return kernels::l2_prefetch_cuda(p, stream); },
      [] { return kernels::Status::kOk; });  // not reached: CPU tensors returned above
  check_kernel_status(status, "prefetch_to_l2", device);
}

int64_t decode_weight_prefetch_bytes() {
  static const int64_t bytes = env_integer("GSA_L2_PREFETCH_MB", 0, 0) << 20;
  return bytes;
}

#ifdef GSA_HAVE_CUDA
struct L2Prefetcher::Side {
  c10::cuda::CUDAStream stream;
  bool forked = false;  // a prefetch is queued that the current stream has not joined
};
#else
struct L2Prefetcher::Side {};
#endif

L2Prefetcher::L2Prefetcher(at::Device device, int64_t max_bytes) : max_bytes_(max_bytes) {
  GSA_CHECK(max_bytes >= 0, "L2Prefetcher: max_bytes must be >= 0, got ", max_bytes);
#ifdef GSA_HAVE_CUDA
  // A high-priority pool stream: never the stream a decode graph is captured on (DecodeStepGraph takes its
  // capture stream from the default pool).
  if (device.is_cuda() && max_bytes > 0) {
    side_ = std::make_unique<Side>(Side{c10::cuda::getStreamFromPool(/*isHighPriority=*/true, device.index())});
  }
#else
  (void)device;
#endif
}

L2Prefetcher::~L2Prefetcher() {
  try {
    join();
  } catch (...) {  // a destructor must not throw; the stream's error surfaces at the next synchronising call
  }
}

void L2Prefetcher::prefetch(const std::vector<at::Tensor>& tensors) {
  if (side_ == nullptr || tensors.empty()) return;
#ifdef GSA_HAVE_CUDA
  const c10::cuda::CUDAStream current = c10::cuda::getCurrentCUDAStream(side_->stream.device_index());
  at::cuda::CUDAEvent fork;
  fork.record(current);
  fork.block(side_->stream);
  const c10::cuda::CUDAStreamGuard on_side(side_->stream);
  prefetch_to_l2(tensors, max_bytes_);
  side_->forked = true;
#endif
}

void L2Prefetcher::join() {
  if (side_ == nullptr) return;
#ifdef GSA_HAVE_CUDA
  if (!side_->forked) return;
  at::cuda::CUDAEvent done;
  done.record(side_->stream);
  done.block(c10::cuda::getCurrentCUDAStream(side_->stream.device_index()));
  side_->forked = false;
#endif
}

}  // namespace gsa
