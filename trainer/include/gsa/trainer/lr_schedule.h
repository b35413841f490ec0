// Learning-rate schedule: linear warmup to the peak, then a cosine decay to peak * min_lr_ratio over the last
// round(decay_fraction * (total_steps - warmup_steps)) steps, the peak held before them: decay_fraction 1 (the
// default) decays over every step after the warmup, less holds the peak first (warmup-stable-decay), 0 never decays.
//
// Contract: lr_at(step) for step in [0, total_steps); step 0 of a warmup of W steps gives peak / W (never 0); the
// cosine's first step is at the peak and its last at peak * min_lr_ratio (a cosine of one step: the peak);
// decay_fraction in [0, 1] (configs/src/validate.cpp checks train.decay_fraction).
#pragma once

#include <cstdint>

namespace gsa {

struct LrSchedule {
  double peak = 1e-3;
  double min_lr_ratio = 0.1;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  double decay_fraction = 1.0;

  // Steps of the cosine at the end of the run.
  int64_t decay_steps() const;
  double lr_at(int64_t step) const;
};

}  // namespace gsa
