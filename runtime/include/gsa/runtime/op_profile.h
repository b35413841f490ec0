// Where a benchmark's time goes: LibTorch's Kineto profiler around a piece of work, summarised per operator,
// per device kernel and per scope (gsa bench train --profile).
//
// Contract: profile_ops(work, cuda, trace_path) runs work() once with the profiler recording CPU operators (and,
// when cuda, the CUDA kernels, copies and fills through CUPTI), waits for the device, and returns:
//   cpu_ops     per CPU operator name: calls and inclusive host time (an operator's time includes the operators it
//               calls and any wait for the device inside it);
//   device_ops  per kernel / copy / fill name: calls and device time;
//   scopes      device time per scope: every device op is charged to the innermost enclosing scope of the CPU
//               operator that launched it, on that operator's thread. Scopes are the ranges named "gsa::..." (our
//               RECORD_FUNCTION marks, e.g. gsa::selected_rows) and the autograd engine's
//               "autograd::engine::evaluate_function: <Node>" ranges, so forward parts and backward nodes both
//               show; device time launched outside any scope is charged to "(no scope)".
// wall_seconds is work()'s wall time (device wait included), device_seconds the sum of all device op times
// (overlapping ops count twice; one stream in our runs). trace_path, when not empty, receives the Chrome trace
// (chrome://tracing, Perfetto). A second profiler running at the same time is an error (LibTorch's).
// table(top) prints the `top` largest entries of each list.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace gsa {

struct OpTotal {
  std::string name;
  int64_t calls = 0;
  double seconds = 0;
};

struct OpProfile {
  double wall_seconds = 0;
  double device_seconds = 0;
  std::vector<OpTotal> cpu_ops;     // largest seconds first
  std::vector<OpTotal> device_ops;  // largest seconds first
  std::vector<OpTotal> scopes;      // largest seconds first

  std::string table(int64_t top) const;
};

OpProfile profile_ops(const std::function<void()>& work, bool cuda, const std::string& trace_path);

}  // namespace gsa
