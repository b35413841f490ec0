#include "gsa/trainer/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace gsa {

int64_t LrSchedule::decay_steps() const {
  return std::llround(decay_fraction * static_cast<double>(std::max<int64_t>(0, total_steps - warmup_steps)));
}

double LrSchedule::lr_at(int64_t step) const {
  if (warmup_steps > 0 && step < warmup_steps) {
    return peak * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  }
  const int64_t n = decay_steps();
  const int64_t start = total_steps - n;  // the cosine's first step (progress 0); the peak before it
  if (n <= 1 || step <= start) return peak;
  const double progress = std::min(1.0, static_cast<double>(step - start) / static_cast<double>(n - 1));
  const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
  return peak * (min_lr_ratio + (1.0 - min_lr_ratio) * cosine);
}

}  // namespace gsa
