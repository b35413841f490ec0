#include "gsa/trainer/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace gsa {

double LrSchedule::lr_at(int64_t step) const {
  if (warmup_steps > 0 && step < warmup_steps) {
    return peak * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  }
  // The cosine's progress runs from 0 (the peak) at step `start` to 1 at the last step: over every step after the
  // warmup, or, with decay_steps, from the last held step, so each of the last decay_steps steps is below the peak.
  const int64_t start = decay_steps > 0 ? total_steps - decay_steps - 1 : warmup_steps;
  const int64_t span = std::max<int64_t>(1, total_steps - start - 1);
  const double progress = std::clamp(static_cast<double>(step - start) / span, 0.0, 1.0);
  const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
  return peak * (min_lr_ratio + (1.0 - min_lr_ratio) * cosine);
}

}  // namespace gsa
