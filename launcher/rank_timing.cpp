#include "rank_timing.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "gsa/parallel/phase_timers.h"

namespace gsa::cli {

double slowest_rank_median_ms(Communicator& comm, int64_t repeats, const std::function<void()>& fn, bool sync_device) {
  auto call = [&] {
    fn();
    if (sync_device) synchronize_device(comm.device());
  };
  call();
  std::vector<double> times;
  for (int64_t i = 0; i < repeats; ++i) {
    comm.barrier();
    const auto start = std::chrono::steady_clock::now();
    call();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    at::Tensor slowest = at::full({1}, ms, at::TensorOptions().dtype(at::kDouble).device(comm.device()));
    comm.all_reduce(slowest, ReduceOp::kMax);
    times.push_back(slowest.item<double>());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace gsa::cli
