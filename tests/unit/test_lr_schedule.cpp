// LrSchedule: linear warmup, then the cosine either over every step after the warmup or over the last decay_steps
// only (warmup-stable-decay). Oracle: the values worked out by hand from the closed form
// lr = peak * (min + (1 - min) * (1 + cos(pi * progress)) / 2), exact to 1e-12.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "gsa/trainer/lr_schedule.h"

namespace gsa {
namespace {

constexpr double kTol = 1e-12;

std::vector<double> all_steps(const LrSchedule& s) {
  std::vector<double> lr;
  for (int64_t step = 0; step < s.total_steps; ++step) lr.push_back(s.lr_at(step));
  return lr;
}

void expect_near_all(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], kTol) << "step " << i;
}

TEST(LrSchedule, CosineSpansEveryStepAfterTheWarmupByDefault) {
  // Warmup 2 (peak / 2, peak), then progress 0, 1/3, 2/3, 1 over steps 2..5 (cos: 1, 1/2, -1/2, -1).
  const LrSchedule s{/*peak=*/2.0, /*min_lr_ratio=*/0.1, /*warmup_steps=*/2, /*total_steps=*/6};
  expect_near_all(all_steps(s), {1.0, 2.0, 2.0, 2.0 * (0.1 + 0.9 * 0.75), 2.0 * (0.1 + 0.9 * 0.25), 0.2});
}

TEST(LrSchedule, DecayStepsHoldThePeakUntilTheLastSteps) {
  // Warmup 2, the peak held over steps 2..5, then the last 4 steps at progress 1/4, 1/2, 3/4, 1.
  const LrSchedule s{/*peak=*/1.0, /*min_lr_ratio=*/0.1, /*warmup_steps=*/2, /*total_steps=*/10, /*decay_steps=*/4};
  const double c1 = 0.5 * (1.0 + std::sqrt(0.5)), c3 = 0.5 * (1.0 - std::sqrt(0.5));  // (1 + cos(pi/4, 3pi/4)) / 2
  expect_near_all(all_steps(s), {0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 0.1 + 0.9 * c1, 0.55, 0.1 + 0.9 * c3, 0.1});
}

TEST(LrSchedule, DecayOverEveryStepAfterTheWarmupStartsBelowThePeak) {
  const LrSchedule s{/*peak=*/1.0, /*min_lr_ratio=*/0.0, /*warmup_steps=*/2, /*total_steps=*/6, /*decay_steps=*/4};
  expect_near_all(all_steps(s), {0.5, 1.0, 0.5 * (1.0 + std::sqrt(0.5)), 0.5, 0.5 * (1.0 - std::sqrt(0.5)), 0.0});
}

TEST(LrSchedule, OneDecayStepEndsAtTheFloorAndAConstantRatioStaysFlat) {
  const LrSchedule last_only{1.0, 0.25, 0, 5, /*decay_steps=*/1};
  expect_near_all(all_steps(last_only), {1.0, 1.0, 1.0, 1.0, 0.25});
  const LrSchedule constant{2e-3, 1.0, 30, 100, /*decay_steps=*/20};  // min_lr_ratio 1: no decay at all
  for (int64_t step = 30; step < 100; ++step) EXPECT_NEAR(constant.lr_at(step), 2e-3, kTol) << "step " << step;
}

}  // namespace
}  // namespace gsa
