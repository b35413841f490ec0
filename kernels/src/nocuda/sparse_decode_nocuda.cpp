// Build without nvcc: the CUDA entry point of sparse_decode.h reports kNoCuda.
#include "gsa/kernels/sparse_decode.h"

namespace gsa::kernels {

Status sparse_decode_cuda(const SparseDecodeParams&, void*) { return Status::kNoCuda; }
int sparse_decode_wave_ctas(const SparseDecodeParams&) { return 0; }

}  // namespace gsa::kernels
