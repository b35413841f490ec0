// Build without nvcc: the CUDA entry point of selected_attention.h reports kNoCuda.
#include "gsa/kernels/selected_attention.h"

namespace gsa::kernels {

Status selected_attention_backward_cuda(const SelectedAttentionBackwardParams&, void*) { return Status::kNoCuda; }

}  // namespace gsa::kernels
