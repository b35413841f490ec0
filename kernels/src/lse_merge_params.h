// Private to gsa_kernels: the argument checks that the CUDA kernel and its CPU twin share, so both reject the
// same inputs with the same status.
#pragma once

#include "gsa/kernels/lse_merge.h"

namespace gsa::kernels::detail {

// kInvalidArgument when P < 1, D < 1, R < 0, or a pointer is null while there are rows to merge (R == 0 with
// null pointers is a valid empty merge: LibTorch hands out null data pointers for empty tensors).
inline Status check_lse_merge_params(const LseMergeParams& params) {
  if (params.num_parts < 1 || params.dim < 1 || params.rows < 0) return Status::kInvalidArgument;
  if (params.rows == 0) return Status::kOk;
  if (params.partial_out == nullptr || params.partial_lse == nullptr || params.out == nullptr ||
      params.lse == nullptr) {
    return Status::kInvalidArgument;
  }
  return Status::kOk;
}

}  // namespace gsa::kernels::detail
