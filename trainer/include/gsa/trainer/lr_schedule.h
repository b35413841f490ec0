// Learning-rate schedule: linear warmup to the peak, then a cosine decay to peak * min_lr_ratio at the last step,
// either over every step after the warmup (decay_steps = 0: the first step after it at the peak) or over the last
// decay_steps steps only, each below the peak, the peak held until then (warmup-stable-decay).
//
// Contract: lr_at(step) for step in [0, total_steps); step 0 of a warmup of W steps gives peak / W (never 0); the
// last step gives peak * min_lr_ratio when it is past the warmup; 0 <= decay_steps <= total_steps - warmup_steps
// (configs/src/validate.cpp checks train.decay_steps).
#pragma once

#include <cstdint>

namespace gsa {

struct LrSchedule {
  double peak = 1e-3;
  double min_lr_ratio = 0.1;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  int64_t decay_steps = 0;  // 0: the cosine spans every step after the warmup

  double lr_at(int64_t step) const;
};

}  // namespace gsa
