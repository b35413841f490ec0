// LrSchedule: linear warmup, then the cosine over every step after the warmup (decay_fraction 1) or over the last
// share of them only (warmup-stable-decay). Oracle: the values worked out by hand from the closed form
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

TEST(LrSchedule, DecayFractionHoldsThePeakUntilTheLastSteps) {
  // Warmup 2, then 8 steps of which half (4) decay: the peak held over steps 2..6 (step 6 the cosine's first,
  // progress 0), then progress 1/3, 2/3, 1 over steps 7..9.
  const LrSchedule s{/*peak=*/1.0, /*min_lr_ratio=*/0.1, /*warmup_steps=*/2, /*total_steps=*/10,
                     /*decay_fraction=*/0.5};
  EXPECT_EQ(s.decay_steps(), 4);
  expect_near_all(all_steps(s), {0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.775, 0.325, 0.1});
}

TEST(LrSchedule, DecayStepsRoundTheFractionOfTheStepsAfterWarmup) {
  // The demo's phase 1: 1,200 steps, 30 of warmup, 0.1718 of the other 1,170 = 201.0 -> 201.
  EXPECT_EQ((LrSchedule{2e-3, 0.05, 30, 1200, 0.1718}.decay_steps()), 201);
  EXPECT_EQ((LrSchedule{2e-3, 0.05, 30, 1200, 1.0}.decay_steps()), 1170);
  EXPECT_EQ((LrSchedule{2e-3, 0.05, 30, 20, 1.0}.decay_steps()), 0);  // all warmup
}

TEST(LrSchedule, FractionZeroNeverDecaysAndOneDecayStepStaysAtThePeak) {
  const LrSchedule never{2e-3, 0.1, 30, 100, /*decay_fraction=*/0.0};
  for (int64_t step = 30; step < 100; ++step) EXPECT_NEAR(never.lr_at(step), 2e-3, kTol) << "step " << step;
  const LrSchedule one{1.0, 0.25, 0, 5, /*decay_fraction=*/0.2};  // 1 step: the cosine's first, the peak
  expect_near_all(all_steps(one), {1.0, 1.0, 1.0, 1.0, 1.0});
  const LrSchedule two{1.0, 0.25, 0, 5, /*decay_fraction=*/0.4};  // 2 steps: the peak, then the floor
  expect_near_all(all_steps(two), {1.0, 1.0, 1.0, 1.0, 0.25});
}

}  // namespace
}  // namespace gsa
