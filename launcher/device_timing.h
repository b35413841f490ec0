// Timing of device work for the benchmarks, two ways:
//  - median_device_ms: the GPU's time for a call, as triton.testing.do_bench (the peers' timer, peers/ and
//    scripts/peer_*.py) measures it -- before each call the L2 cache is flushed by zeroing a 256 MiB buffer, the call
//    is bracketed by CUDA events on the current stream, and the median over the calls is returned. The host's
//    launches are hidden behind the flush (the host enqueues ahead of the GPU) unless a call launches more than the
//    GPU runs; a synchronisation inside the call shows as GPU idle time.
//  - median_wall_ms: the host's wall-clock time for a call and a synchronisation on the tensor it returns (a launch
//    latency plus a device-to-host round trip on top of the GPU's time: tens of microseconds).
// Both run two warm-up calls first.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>

namespace gsa::cli {

// Waits until `t` (any device) is computed.
void synchronize_on(const at::Tensor& t);

// Median GPU milliseconds of fn over `repeats` calls, each after an L2 flush (CUDA only).
double median_device_ms(const std::function<at::Tensor()>& fn, int64_t repeats);

// Median wall-clock milliseconds of fn plus a synchronisation on its result, over `repeats` calls.
double median_wall_ms(const std::function<at::Tensor()>& fn, int64_t repeats);

}  // namespace gsa::cli
