#include "device_timing.h"

#include <algorithm>
#include <chrono>
#include <vector>

namespace gsa::cli {

void synchronize_on(const at::Tensor& t) { (void)t.reshape(-1)[0].item<float>(); }

double median_device_ms(const std::function<at::Tensor()>& fn, int64_t repeats) {
  synchronize_on(fn());
  synchronize_on(fn());
  std::vector<double> times;
  for (int64_t r = 0; r < std::max<int64_t>(repeats, 1); ++r) {
    const auto start = std::chrono::steady_clock::now();
    synchronize_on(fn());
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace gsa::cli
