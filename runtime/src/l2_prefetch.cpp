#include "gsa/runtime/l2_prefetch.h"

#include <algorithm>

#include "gsa/kernels/l2_prefetch.h"
#include "gsa/runtime/env_knob.h"
#include "gsa/runtime/error.h"
#include "kernel_tensors.h"

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

}  // namespace gsa
