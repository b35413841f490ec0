// Whether an attention-side operation (prefill attention, selection, decode) runs its kernels or the LibTorch
// reference path, by AttentionOptions::backend: KERNELS forces the kernels (their CPU twin on CPU tensors) and is
// an error naming the operation and why when they cannot run these inputs; REFERENCE never runs them; AUTO runs
// them on CUDA tensors they support. why_not: "" when the kernels can run the inputs.
#pragma once

#include <string>

#include "gsa/config/options.h"

namespace gsa {

bool use_kernel_backend(AttentionBackend backend, bool on_cuda, const std::string& why_not, const std::string& what);

}  // namespace gsa
