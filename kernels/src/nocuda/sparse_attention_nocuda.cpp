// Build without nvcc: the CUDA entry points of sparse_attention.h report kNoCuda.
#include "gsa/kernels/sparse_attention.h"

namespace gsa::kernels {

Status sparse_attention_forward_cuda(const SparseAttentionParams&, void*) { return Status::kNoCuda; }
Status sparse_attention_backward_cuda(const SparseAttentionParams&, void*) { return Status::kNoCuda; }
bool sparse_attention_backward_fuses_dq() { return false; }
StoredDs sparse_attention_backward_stored_ds() { return StoredDs::kNever; }

}  // namespace gsa::kernels
