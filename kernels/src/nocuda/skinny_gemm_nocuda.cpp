// Build without nvcc: the CUDA entry point of skinny_gemm.h reports kNoCuda.
#include "gsa/kernels/skinny_gemm.h"

namespace gsa::kernels {

Status skinny_gemm_cuda(const SkinnyGemmParams&, void*) { return Status::kNoCuda; }

}  // namespace gsa::kernels
