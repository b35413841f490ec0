#include "gsa/runtime/kernel_choice.h"

#include "gsa/runtime/error.h"

namespace gsa {

bool use_kernel_backend(AttentionBackend backend, bool on_cuda, const std::string& why_not, const std::string& what) {
  if (backend == AttentionBackend::kKernels) {
    GSA_CHECK(why_not.empty(), "attention.backend = KERNELS cannot ", what, ": ", why_not, " (use AUTO or REFERENCE)");
    return true;
  }
  return backend == AttentionBackend::kAuto && on_cuda && why_not.empty();
}

}  // namespace gsa
