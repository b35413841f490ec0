// CPU twin of greedy_choice_cuda: one pass over the row, forbidden ids and those past the limit as -inf.
#include <cmath>
#include <limits>
#include <vector>

#include "gsa/kernels/greedy_choice.h"
#include "half_storage.h"

namespace gsa::kernels {

Status greedy_choice_reference(const GreedyChoiceParams& p) {
  if (p.vocab < 1 || !p.logits || !p.out || p.forbidden_count < 0 || (p.forbidden_count > 0 && !p.forbidden)) {
    return Status::kInvalidArgument;
  }
  std::vector<bool> banned(static_cast<size_t>(p.vocab), false);
  for (int32_t i = 0; i < p.forbidden_count; ++i) {
    if (p.forbidden[i] >= 0 && p.forbidden[i] < p.vocab) banned[static_cast<size_t>(p.forbidden[i])] = true;
  }
  int64_t best = 0;
  float best_value = -std::numeric_limits<float>::infinity();
  bool has_nan = false;
  for (int64_t i = 0; i < p.vocab; ++i) {
    float v = -std::numeric_limits<float>::infinity();
    if (!banned[static_cast<size_t>(i)] && i < p.id_limit) {
      switch (p.dtype) {
        case LogitType::kBFloat16:  // exact in float
          v = static_cast<float>(detail::load_element(p.logits, i, DType::kBFloat16));
          break;
        case LogitType::kFloat16:
          v = static_cast<float>(detail::load_element(p.logits, i, DType::kFloat16));
          break;
        case LogitType::kFloat32:
          v = static_cast<const float*>(p.logits)[i];
          break;
      }
    }
    if (std::isnan(v)) {
      has_nan = true;
    } else if (v > best_value) {
      best_value = v;
      best = i;
    }
  }
  p.out[0] = best;
  p.out[1] = has_nan ? 1 : 0;
  return Status::kOk;
}

}  // namespace gsa::kernels
