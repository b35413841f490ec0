// Build without nvcc: the CUDA entry points of decode_step_ops.h report kNoCuda.
#include "gsa/kernels/decode_step_ops.h"

namespace gsa::kernels {

Status rope_append_cuda(const RopeAppendParams&, void*) { return Status::kNoCuda; }
Status add_rms_norm_cuda(const AddRmsNormParams&, void*) { return Status::kNoCuda; }
Status silu_mul_cuda(const SiluMulParams&, void*) { return Status::kNoCuda; }

}  // namespace gsa::kernels
