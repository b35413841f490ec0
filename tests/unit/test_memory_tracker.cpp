// MemoryTracker: the counting CPU allocator sees tensor allocations and frees; reset_peak restarts the peak.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include <ATen/ATen.h>
#include <c10/core/Allocator.h>

#include "gsa/runtime/error.h"
#include "gsa/runtime/memory_tracker.h"

namespace gsa {
namespace {

const at::Device kCpu(at::kCPU);

class MemoryTrackerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MemoryTracker::install();
    MemoryTracker::install();  // idempotent
  }
};

TEST_F(MemoryTrackerTest, PeakRisesByAtLeastTheTensorSize) {
  constexpr int64_t kElems = 1 << 20;  // 4 MiB of float32
  constexpr int64_t kBytes = kElems * 4;
  MemoryTracker::reset_peak(kCpu);
  const int64_t before = MemoryTracker::current_bytes(kCpu);
  EXPECT_EQ(MemoryTracker::peak_bytes(kCpu), before);
  {
    at::Tensor t = at::empty({kElems}, at::kFloat);  // [kElems]
    EXPECT_GE(MemoryTracker::current_bytes(kCpu), before + kBytes);
    EXPECT_GE(MemoryTracker::peak_bytes(kCpu), before + kBytes);
  }
  // Freed: current drops back, the peak stays.
  EXPECT_LE(MemoryTracker::current_bytes(kCpu), before);
  EXPECT_GE(MemoryTracker::peak_bytes(kCpu), before + kBytes);
}

TEST_F(MemoryTrackerTest, FreesLowerCurrentAndResetPeakRestarts) {
  at::Tensor keep = at::ones({1000}, at::kDouble);  // [1000], 8000 bytes
  at::Tensor big = at::zeros({3, 1 << 18}, at::kFloat);  // [3, 262144], 3 MiB
  const int64_t with_both = MemoryTracker::current_bytes(kCpu);
  big = at::Tensor();
  const int64_t with_keep = MemoryTracker::current_bytes(kCpu);
  EXPECT_LE(with_keep, with_both - 3 * (1 << 18) * 4);
  EXPECT_GE(MemoryTracker::peak_bytes(kCpu), with_both);

  MemoryTracker::reset_peak(kCpu);
  EXPECT_EQ(MemoryTracker::peak_bytes(kCpu), with_keep);
  at::Tensor small = at::empty({256}, at::kFloat);  // [256], 1 KiB
  EXPECT_GE(MemoryTracker::peak_bytes(kCpu), with_keep + 1024);
  EXPECT_LT(MemoryTracker::peak_bytes(kCpu), with_both);
  EXPECT_EQ(keep.sum().item<double>(), 1000.0);
}

TEST_F(MemoryTrackerTest, OpsThatAllocateAreCounted) {
  const at::Tensor a = at::randn({512, 512});  // [512, 512]
  MemoryTracker::reset_peak(kCpu);
  const int64_t before = MemoryTracker::current_bytes(kCpu);
  const at::Tensor c = at::matmul(a, a);  // [512, 512], 1 MiB result
  EXPECT_GE(MemoryTracker::current_bytes(kCpu), before + 512 * 512 * 4);
  EXPECT_GE(MemoryTracker::peak_bytes(kCpu), before + 512 * 512 * 4);
}

// LibTorch's raw_allocate (oneDNN's scratch for a bf16 matmul) needs DataPtrs whose context is their data: a bf16
// matmul runs with the tracker installed (it failed an internal assert before), and raw buffers are counted
// while they live.
TEST_F(MemoryTrackerTest, RawAllocationsAndBf16MatmulWork) {
  c10::Allocator* cpu = c10::GetAllocator(at::kCPU);
  const int64_t before = MemoryTracker::current_bytes(kCpu);
  void* raw = cpu->raw_allocate(1 << 20);
  ASSERT_NE(raw, nullptr);
  EXPECT_GE(MemoryTracker::current_bytes(kCpu), before + (1 << 20));
  cpu->raw_deallocate(raw);
  EXPECT_EQ(MemoryTracker::current_bytes(kCpu), before);
  const at::Tensor a = at::randn({64, 96}).to(at::kBFloat16), b = at::randn({96, 32}).to(at::kBFloat16);
  const at::Tensor c = at::matmul(a, b);  // [64, 32]
  EXPECT_LT((c.to(at::kFloat) - at::matmul(a.to(at::kFloat), b.to(at::kFloat))).abs().max().item<float>(), 0.5f);
}

TEST_F(MemoryTrackerTest, CountsFromManyThreads) {
  MemoryTracker::reset_peak(kCpu);
  const int64_t before = MemoryTracker::current_bytes(kCpu);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([] {
      for (int j = 0; j < 200; ++j) at::Tensor t = at::empty({1024 + j}, at::kFloat);  // [1024 + j]
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(MemoryTracker::current_bytes(kCpu), before);  // every allocation was matched by its free
  EXPECT_GE(MemoryTracker::peak_bytes(kCpu), before + 1024 * 4);
}

TEST_F(MemoryTrackerTest, CudaStatsOrAClearError) {
  const at::Device cuda(at::kCUDA, 0);
  if (!at::hasCUDA()) {
    EXPECT_THROW(MemoryTracker::peak_bytes(cuda), Error);
    return;
  }
  MemoryTracker::reset_peak(cuda);
  const int64_t before = MemoryTracker::current_bytes(cuda);
  at::Tensor t = at::empty({1 << 20}, at::TensorOptions().dtype(at::kFloat).device(cuda));  // [1M]
  EXPECT_GE(MemoryTracker::current_bytes(cuda), before + (4 << 20));
  EXPECT_GE(MemoryTracker::peak_bytes(cuda), before + (4 << 20));
  t = at::Tensor();
  EXPECT_LE(MemoryTracker::current_bytes(cuda), before);
}

// available_bytes: unknown (-1) on the CPU, a clear error for CUDA without a device; with one, positive and lower by
// about a fresh allocation's size once it is made (the driver's free memory plus the allocator's reserved but unused
// bytes: whether the allocation comes from the cache or from the driver, it takes its size out of that sum; up to
// 64 MiB of slack for the allocator's rounding and the driver's own bookkeeping).
TEST_F(MemoryTrackerTest, AvailableBytesDropByAnAllocationsSize) {
  EXPECT_EQ(MemoryTracker::available_bytes(kCpu), -1);
  const at::Device cuda(at::kCUDA, 0);
  if (!at::hasCUDA()) {
    EXPECT_THROW(MemoryTracker::available_bytes(cuda), Error);
    return;
  }
  at::Tensor warm = at::empty({1}, at::TensorOptions().device(cuda));  // the context exists before the first reading
  const int64_t before = MemoryTracker::available_bytes(cuda);
  ASSERT_GT(before, int64_t(1) << 30);
  constexpr int64_t kBytes = int64_t(256) << 20;
  at::Tensor t = at::empty({kBytes}, at::TensorOptions().dtype(at::kByte).device(cuda));  // [256 MiB]
  const int64_t drop = before - MemoryTracker::available_bytes(cuda);
  EXPECT_GE(drop, kBytes - (int64_t(2) << 20));
  EXPECT_LE(drop, kBytes + (int64_t(64) << 20));
}

}  // namespace
}  // namespace gsa
