// Peak-memory measurement for benchmarks, and the memory a CUDA device has left.
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
  // Bytes a new allocation on a CUDA device can take: the driver's free memory plus the caching allocator's reserved
  // but unallocated bytes (whether they are contiguous enough is the allocator's business); -1 on the CPU or where
  // the allocator cannot say. For workspaces that are worth having only when they fit (allocating past this would
  // make the allocator empty its cache and raise out-of-memory).
  static int64_t available_bytes(const at::Device& device);
};

}  // namespace gsa
