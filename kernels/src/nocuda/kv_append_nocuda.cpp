// Build without nvcc: the CUDA entry point of kv_append.h reports kNoCuda.
#include "gsa/kernels/kv_append.h"

namespace gsa::kernels {

Status kv_append_cuda(const KvAppendParams&, void*) { return Status::kNoCuda; }

}  // namespace gsa::kernels
