#include "device_timing.h"

#include <ATen/cuda/CUDAEvent.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "gsa/runtime/error.h"

namespace gsa::cli {
namespace {

constexpr int64_t kL2FlushBytes = int64_t{256} << 20;  // triton.testing.do_bench's flush; the H200's L2 is 50 MiB

double median(std::vector<double> times) {
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

void synchronize_on(const at::Tensor& t) { (void)t.reshape(-1)[0].item<float>(); }

double median_device_ms(const std::function<at::Tensor()>& fn, int64_t repeats) {
  GSA_CHECK(at::hasCUDA(), "median_device_ms times CUDA work and needs a CUDA device");
  synchronize_on(fn());
  synchronize_on(fn());
  const at::Tensor flush = at::empty({kL2FlushBytes}, at::TensorOptions().dtype(at::kByte).device(at::kCUDA));
  const int64_t n = std::max<int64_t>(repeats, 1);
  std::vector<at::cuda::CUDAEvent> start, stop;
  for (int64_t r = 0; r < n; ++r) {
    start.emplace_back(cudaEventDefault);  // timed events
    stop.emplace_back(cudaEventDefault);
  }
  for (int64_t r = 0; r < n; ++r) {
    flush.zero_();
    start[r].record();
    (void)fn();
    stop[r].record();
  }
  stop.back().synchronize();  // the last call's work, and so every call's, is done
  std::vector<double> times;
  for (int64_t r = 0; r < n; ++r) times.push_back(start[r].elapsed_time(stop[r]));
  return median(times);
}

double median_wall_ms(const std::function<at::Tensor()>& fn, int64_t repeats) {
  synchronize_on(fn());
  synchronize_on(fn());
  std::vector<double> times;
  for (int64_t r = 0; r < std::max<int64_t>(repeats, 1); ++r) {
    const auto start = std::chrono::steady_clock::now();
    synchronize_on(fn());
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  return median(times);
}

}  // namespace gsa::cli
