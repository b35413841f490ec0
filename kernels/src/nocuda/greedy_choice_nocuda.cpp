// Build without nvcc: the CUDA entry point of greedy_choice.h reports kNoCuda.
#include "gsa/kernels/greedy_choice.h"

namespace gsa::kernels {

Status greedy_choice_cuda(const GreedyChoiceParams&, void*) { return Status::kNoCuda; }

}  // namespace gsa::kernels
