// Timing for the distributed benchmarks (gsa bench comm, gsa bench sp): what the slowest rank sees.
#pragma once

#include <cstdint>
#include <functional>

#include "gsa/parallel/communicator.h"

namespace gsa::cli {

// One warm-up call of fn, then `repeats` timed calls, each after a barrier; returns the median over calls of the
// slowest rank's wall time in ms. sync_device: also wait inside the timed region for the work fn queued on the
// communicator's device (a CUDA device; nothing to wait for on the CPU).
double slowest_rank_median_ms(Communicator& comm, int64_t repeats, const std::function<void()>& fn, bool sync_device);

}  // namespace gsa::cli
