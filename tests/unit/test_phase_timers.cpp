// Phase timers (gsa/parallel/phase_timers.h): off by default (nothing accumulates), nested scopes take their
// time out of the enclosing phase, and the autograd collectives time their backward under the phase their
// forward ran in. Oracle: the sleeps' durations measured by the test's own steady clock; tolerance: the sleeps
// are 20-40 ms and the scopes' bookkeeping microseconds; a shared machine may oversleep, so each total is
// within [sleep, sleep + 25 ms], tighter than the 30 ms a nested scope would add if it were counted twice.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <ATen/ATen.h>

#include "gsa/parallel/autograd_collectives.h"
#include "gsa/parallel/local_communicator.h"
#include "gsa/parallel/phase_timers.h"

namespace gsa {
namespace {

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

double ms_of(Phase p) { return PhaseTimers::seconds()[static_cast<size_t>(p)] * 1e3; }

TEST(PhaseTimers, OffByDefaultAndWhenDisabled) {
  PhaseTimers::disable();
  PhaseTimers::reset();
  {
    ScopedPhase timed(Phase::kHalo);
    EXPECT_EQ(PhaseTimers::current_phase(), Phase::kNone);
    sleep_ms(20);
  }
  EXPECT_EQ(ms_of(Phase::kHalo), 0.0);
}

TEST(PhaseTimers, NestedScopesCountEachIntervalOnce) {
  PhaseTimers::enable(at::kCPU);
  {
    ScopedPhase outer(Phase::kAttention);
    sleep_ms(20);
    {
      ScopedPhase inner(Phase::kRouting);
      EXPECT_EQ(PhaseTimers::current_phase(), Phase::kRouting);
      sleep_ms(30);
    }
    EXPECT_EQ(PhaseTimers::current_phase(), Phase::kAttention);
    sleep_ms(20);
  }
  PhaseTimers::disable();
  EXPECT_GE(ms_of(Phase::kAttention), 40.0);
  EXPECT_LE(ms_of(Phase::kAttention), 65.0);
  EXPECT_GE(ms_of(Phase::kRouting), 30.0);
  EXPECT_LE(ms_of(Phase::kRouting), 55.0);
  EXPECT_EQ(ms_of(Phase::kHalo), 0.0);
  PhaseTimers::enable(at::kCPU);  // enable() zeroes the totals
  PhaseTimers::disable();
  EXPECT_EQ(ms_of(Phase::kAttention), 0.0);
}

TEST(PhaseTimers, BackwardOfACollectiveCountsUnderItsForwardPhase) {
  auto comm = std::make_shared<LocalCommunicator>(at::kCPU);
  at::Tensor x = at::ones({3, 2}, at::kDouble).requires_grad_();
  PhaseTimers::enable(at::kCPU);
  at::Tensor gathered;
  {
    ScopedPhase timed(Phase::kGistTree);
    gathered = all_gather_rows(x, *comm, {3});
  }
  const double forward_ms = ms_of(Phase::kGistTree);
  // The backward's reduce-scatter is credited to the gist tree, though the scope open around backward is halo.
  at::Tensor grad = at::full({3, 2}, 2.0, at::kDouble);
  {
    ScopedPhase other(Phase::kHalo);  // a scope open around backward: the node's scope nests inside it
    sleep_ms(20);
    gathered.backward(grad);
  }
  PhaseTimers::disable();
  EXPECT_TRUE(at::equal(x.grad(), grad));  // one rank: the reduce-scatter returns the gradient itself
  EXPECT_GT(ms_of(Phase::kGistTree), forward_ms);  // the backward added to the gist tree
  EXPECT_GE(ms_of(Phase::kHalo), 20.0);
  EXPECT_LE(ms_of(Phase::kHalo), 45.0);
}

TEST(PhaseTimers, NamesAreTheCsvColumnStems) {
  EXPECT_STREQ(phase_name(Phase::kAttention), "attention");
  EXPECT_STREQ(phase_name(Phase::kGistTree), "gist_tree");
  EXPECT_STREQ(phase_name(Phase::kHalo), "halo");
  EXPECT_STREQ(phase_name(Phase::kRouting), "routing");
  EXPECT_STREQ(phase_name(Phase::kGradAllReduce), "grad_allreduce");
  EXPECT_STREQ(phase_name(Phase::kDecodeMerge), "decode_merge");
}

}  // namespace
}  // namespace gsa
