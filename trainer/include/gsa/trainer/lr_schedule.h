// Learning-rate schedule: linear warmup to the peak, then cosine decay to peak * min_lr_ratio at the last step.
//
// Contract: lr_at(step) for step in [0, total_steps); step 0 of a warmup of W steps gives peak / W (never 0).
#pragma once

#include <cstdint>

namespace gsa {

struct LrSchedule {
  double peak = 1e-3;
  double min_lr_ratio = 0.1;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;

  double lr_at(int64_t step) const;
};

}  // namespace gsa
