// Peak-memory measurement for benchmarks.
//
// Contract: MemoryTracker::install() (idempotent, call once before allocating the tensors to be measured)
// wraps LibTorch's CPU allocator with a counting one. reset_peak(device) sets the peak to the bytes in use
// now; peak_bytes(device) returns the highest bytes in use since. For CUDA devices it reads the caching
// allocator's statistics instead (reserved-free "allocated bytes"). Thread-safe.
#pragma once

#include <cstdint>

#include <ATen/ATen.h>

namespace gsa {

class MemoryTracker {
 public:
  static void install();
  static void reset_peak(const at::Device& device);
  static int64_t peak_bytes(const at::Device& device);
  static int64_t current_bytes(const at::Device& device);
  // Hands the device allocator's cached, unused blocks back to the driver (no-op on CPU), so that a benchmark's
  // next point starts from the memory its predecessor freed, not from a cache fragmented by it.
  static void release_cached(const at::Device& device);
};

}  // namespace gsa
