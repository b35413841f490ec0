// Timing of device work for the benchmarks: the median of repeated calls, each ended by a synchronisation on
// the tensor it returns, after two warm-ups.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>

namespace gsa::cli {

// Waits until `t` (any device) is computed.
void synchronize_on(const at::Tensor& t);

// Median milliseconds of fn over `repeats` calls after two warm-ups.
double median_device_ms(const std::function<at::Tensor()>& fn, int64_t repeats);

}  // namespace gsa::cli
