#include "gsa/kernels/lse_merge.h"

namespace gsa::kernels {

const char* status_string(Status status) {
  switch (status) {
    case Status::kOk: return "ok";
    case Status::kInvalidArgument: return "invalid argument";
    case Status::kCudaError: return "CUDA error";
    case Status::kNoCuda: return "built without CUDA";
  }
  return "unknown status";
}

}  // namespace gsa::kernels
