// Build without nvcc: the CUDA entry point of chunk_selection.h reports kNoCuda.
#include "gsa/kernels/chunk_selection.h"

namespace gsa::kernels {

Status chunk_selection_cuda(const ChunkSelectionParams&, void*) { return Status::kNoCuda; }

}  // namespace gsa::kernels
