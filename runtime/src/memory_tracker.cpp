#include "gsa/runtime/memory_tracker.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <unordered_map>

#include <ATen/Context.h>
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/CachingDeviceAllocator.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include "gsa/runtime/error.h"

namespace gsa {
namespace {

// Priority above the default CPU allocator's (0) and the ones LibTorch may register itself, so ours wins.
constexpr uint8_t kCountingAllocatorPriority = 200;

// Wraps the CPU allocator that was current at install(): every allocation is forwarded to it, and its size is
// counted while it lives. The DataPtr handed out has context == data (LibTorch's raw_allocate(), which oneDNN's
// bf16 matmul uses for scratch, asserts it), so what the deleter needs -- the original DataPtr and the size --
// lives in a table keyed by the data pointer, under a mutex. The peak is raised with a compare-exchange loop.
class CountingCpuAllocator final : public c10::Allocator {
 public:
  explicit CountingCpuAllocator(c10::Allocator* original) : original_(original) {}

  c10::DataPtr allocate(size_t n) override {
    c10::DataPtr inner = original_->allocate(n);
    void* data = inner.get();
    const c10::Device device = inner.device();
    if (data == nullptr) return c10::DataPtr(nullptr, device);  // nothing to count or free
    {
      std::lock_guard<std::mutex> lock(mutex_);
      live_.emplace(data, Allocation{std::move(inner), static_cast<int64_t>(n)});
    }
    add(static_cast<int64_t>(n));
    return c10::DataPtr(data, data, &CountingCpuAllocator::release, device);
  }

  c10::DeleterFnPtr raw_deleter() const override { return &CountingCpuAllocator::release; }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    original_->copy_data(dest, src, count);
  }

  int64_t current() const { return current_.load(std::memory_order_relaxed); }
  int64_t peak() const { return peak_.load(std::memory_order_relaxed); }
  void reset_peak() { peak_.store(current_.load(std::memory_order_relaxed), std::memory_order_relaxed); }

  static CountingCpuAllocator* instance;  // set once by install(), never freed (allocations may outlive main)

 private:
  struct Allocation {
    c10::DataPtr inner;  // freed by its own (original) deleter when the entry goes
    int64_t bytes = 0;
  };

  static void release(void* data) {
    CountingCpuAllocator& self = *instance;
    Allocation gone;
    {
      std::lock_guard<std::mutex> lock(self.mutex_);
      auto it = self.live_.find(data);
      if (it == self.live_.end()) return;  // not ours (cannot happen: every DataPtr we hand out is in the table)
      gone = std::move(it->second);
      self.live_.erase(it);
    }
    self.current_.fetch_sub(gone.bytes, std::memory_order_relaxed);
  }  // gone.inner frees the memory here, outside the lock

  void add(int64_t bytes) {
    const int64_t now = current_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    int64_t seen = peak_.load(std::memory_order_relaxed);
    while (now > seen && !peak_.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
    }
  }

  c10::Allocator* original_;
  std::mutex mutex_;
  std::unordered_map<void*, Allocation> live_;
  std::atomic<int64_t> current_{0};
  std::atomic<int64_t> peak_{0};
};

CountingCpuAllocator* CountingCpuAllocator::instance = nullptr;

CountingCpuAllocator& cpu_counter(const char* caller) {
  GSA_CHECK(CountingCpuAllocator::instance != nullptr, "MemoryTracker::", caller,
            ": call MemoryTracker::install() before measuring CPU memory");
  return *CountingCpuAllocator::instance;
}

// The device allocator (CUDA caching allocator) and the device index to read its statistics for: the
// device's own index, or the current device when it has none.
std::pair<c10::DeviceAllocator*, c10::DeviceIndex> device_allocator(const at::Device& device, const char* caller) {
  GSA_CHECK(device.is_cuda(), "MemoryTracker::", caller, ": unsupported device ", device,
            " (only cpu and cuda are tracked)");
  GSA_CHECK(at::hasCUDA(), "MemoryTracker::", caller, ": device ", device,
            " requested but LibTorch has no usable CUDA device here");
  at::globalContext().lazyInitDevice(device.type());
  c10::DeviceIndex index = device.index();
  if (index < 0) index = c10::impl::getDeviceGuardImpl(device.type())->getDevice().index();
  return {c10::getDeviceAllocator(device.type()), index};
}

// allocated_bytes (live tensor bytes, not the cache's reserve), summed over pools.
const c10::CachingAllocator::Stat& allocated_stat(const c10::CachingDeviceAllocator::DeviceStats& stats) {
  return stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)];
}

}  // namespace

void MemoryTracker::install() {
  static std::once_flag once;
  std::call_once(once, [] {
    c10::Allocator* original = c10::GetCPUAllocator();
    auto* counting = new CountingCpuAllocator(original);
    CountingCpuAllocator::instance = counting;  // before SetCPUAllocator: release() reads it
    c10::SetCPUAllocator(counting, kCountingAllocatorPriority);
    if (c10::GetCPUAllocator() != counting) {  // not taken: nothing was counted, nothing will be
      CountingCpuAllocator::instance = nullptr;
      throw Error(str_cat("MemoryTracker::install: another CPU allocator holds a priority above ",
                          static_cast<int>(kCountingAllocatorPriority), "; CPU memory cannot be counted"));
    }
  });
}

void MemoryTracker::reset_peak(const at::Device& device) {
  if (device.is_cpu()) {
    cpu_counter("reset_peak").reset_peak();
    return;
  }
  auto [allocator, index] = device_allocator(device, "reset_peak");
  allocator->resetPeakStats(index);
}

int64_t MemoryTracker::peak_bytes(const at::Device& device) {
  if (device.is_cpu()) return cpu_counter("peak_bytes").peak();
  auto [allocator, index] = device_allocator(device, "peak_bytes");
  return allocated_stat(allocator->getDeviceStats(index)).peak;
}

int64_t MemoryTracker::current_bytes(const at::Device& device) {
  if (device.is_cpu()) return cpu_counter("current_bytes").current();
  auto [allocator, index] = device_allocator(device, "current_bytes");
  return allocated_stat(allocator->getDeviceStats(index)).current;
}

int64_t MemoryTracker::available_bytes(const at::Device& device) {
  if (!device.is_cuda()) return -1;
  auto [allocator, index] = device_allocator(device, "available_bytes");
  try {
    const size_t driver_free = allocator->getMemoryInfo(index).first;
    const auto stats = allocator->getDeviceStats(index);
    const auto all = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
    return static_cast<int64_t>(driver_free) + stats.reserved_bytes[all].current - stats.allocated_bytes[all].current;
  } catch (const c10::Error&) {  // an allocator without getMemoryInfo
    return -1;
  }
}

void MemoryTracker::release_cached(const at::Device& device) {
  if (device.is_cpu()) return;
  auto [allocator, index] = device_allocator(device, "release_cached");
  (void)index;
  allocator->emptyCache();
}

}  // namespace gsa
