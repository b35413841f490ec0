// Build without nvcc: the CUDA entry point of l2_prefetch.h reports kNoCuda.
#include "gsa/kernels/l2_prefetch.h"

namespace gsa::kernels {

Status l2_prefetch_cuda(const L2PrefetchParams&, void*) { return Status::kNoCuda; }

}  // namespace gsa::kernels
