#include "gsa/runtime/op_profile.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/profiler_kineto.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>
#include <unordered_map>
#ifdef GSA_HAVE_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

#include "gsa/runtime/error.h"

namespace gsa {
namespace {

namespace prof = torch::autograd::profiler;

constexpr uint8_t kCpuOpActivity = 0;  // libkineto::ActivityType::CPU_OP

bool is_scope(const std::string& name) {
  return name.rfind("gsa::", 0) == 0 || name.rfind("autograd::engine::evaluate_function: ", 0) == 0;
}

struct Range {
  uint64_t begin = 0, end = 0;
  const std::string* name = nullptr;
};

std::vector<OpTotal> sorted_totals(const std::map<std::string, OpTotal>& totals) {
  std::vector<OpTotal> list;
  for (const auto& [name, total] : totals) list.push_back(total);
  std::sort(list.begin(), list.end(), [](const OpTotal& a, const OpTotal& b) { return a.seconds > b.seconds; });
  return list;
}

void add(std::map<std::string, OpTotal>& totals, const std::string& name, double seconds) {
  OpTotal& t = totals[name];
  t.name = name;
  t.calls += 1;
  t.seconds += seconds;
}

void print_list(std::ostringstream& out, const char* title, const std::vector<OpTotal>& list, int64_t top,
                double whole) {
  out << title << "\n";
  char line[512];
  std::snprintf(line, sizeof(line), "  %10s %6s %8s  %s\n", "ms", "%", "calls", "name");
  out << line;
  for (int64_t i = 0; i < std::min<int64_t>(top, list.size()); ++i) {
    const OpTotal& t = list[i];
    std::snprintf(line, sizeof(line), "  %10.3f %5.1f%% %8lld  %.400s\n", t.seconds * 1e3,
                  whole > 0 ? 100.0 * t.seconds / whole : 0.0, (long long)t.calls, t.name.c_str());
    out << line;
  }
}

}  // namespace

std::string OpProfile::table(int64_t top) const {
  std::ostringstream out;
  char line[256];
  std::snprintf(line, sizeof(line), "profile: wall %.3f ms, device ops %.3f ms\n", wall_seconds * 1e3,
                device_seconds * 1e3);
  out << line;
  print_list(out, "device time by scope (innermost gsa:: or autograd backward node that launched it):", scopes, top,
             device_seconds);
  print_list(out, "device ops (kernels, copies, fills):", device_ops, top, device_seconds);
  print_list(out, "CPU operators (inclusive host time):", cpu_ops, top, wall_seconds);
  return out.str();
}

OpProfile profile_ops(const std::function<void()>& work, bool cuda, const std::string& trace_path) {
  using torch::profiler::impl::ActivityType;
  using torch::profiler::impl::ProfilerConfig;
  using torch::profiler::impl::ProfilerState;
  std::set<ActivityType> activities{ActivityType::CPU};
  if (cuda) activities.insert(ActivityType::CUDA);
  const ProfilerConfig config(ProfilerState::KINETO);
  prof::prepareProfiler(config, activities);
  prof::enableProfiler(config, activities);
  OpProfile profile;
  const auto start = std::chrono::steady_clock::now();
  try {
    work();
#ifdef GSA_HAVE_CUDA
    if (cuda) c10::cuda::device_synchronize();
#endif
  } catch (...) {
    prof::disableProfiler();  // a profiler left on would refuse the next one and slow every later op
    throw;
  }
  profile.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::unique_ptr<prof::ProfilerResult> result = prof::disableProfiler();
  GSA_CHECK(result != nullptr, "profiler: LibTorch returned no result");

  // Names live as long as `names` (events() returns copies of its strings).
  std::vector<std::string> names;
  const std::vector<prof::KinetoEvent>& events = result->events();
  names.reserve(events.size());
  for (const prof::KinetoEvent& e : events) names.push_back(e.name());

  std::map<std::string, OpTotal> cpu, device, scope;
  std::unordered_map<uint64_t, size_t> op_by_correlation;  // CPU operator correlation id -> event index
  std::unordered_map<uint64_t, std::vector<Range>> scopes_by_thread;
  for (size_t i = 0; i < events.size(); ++i) {
    const prof::KinetoEvent& e = events[i];
    const double seconds = static_cast<double>(e.durationNs()) * 1e-9;
    if (e.deviceType() == c10::DeviceType::CPU) {
      add(cpu, names[i], seconds);
      if (e.activityType() == kCpuOpActivity) {
        op_by_correlation[e.correlationId()] = i;
        if (is_scope(names[i])) scopes_by_thread[e.startThreadId()].push_back({e.startNs(), e.endNs(), &names[i]});
      }
    } else {
      add(device, names[i], seconds);
      profile.device_seconds += seconds;
    }
  }
  for (auto& [thread, ranges] : scopes_by_thread) {
    std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
  }
  static const std::string kNoScope = "(no scope)";
  for (size_t i = 0; i < events.size(); ++i) {
    const prof::KinetoEvent& e = events[i];
    if (e.deviceType() == c10::DeviceType::CPU) continue;
    const std::string* owner = &kNoScope;
    const auto op = op_by_correlation.find(e.linkedCorrelationId());
    if (op != op_by_correlation.end()) {
      const prof::KinetoEvent& launcher = events[op->second];
      const auto ranges = scopes_by_thread.find(launcher.startThreadId());
      if (ranges != scopes_by_thread.end()) {
        const uint64_t t = launcher.startNs();
        // The innermost enclosing scope: the latest-starting range that starts at or before t and ends after it.
        auto it = std::upper_bound(ranges->second.begin(), ranges->second.end(), t,
                                   [](uint64_t time, const Range& r) { return time < r.begin; });
        while (it != ranges->second.begin()) {
          --it;
          if (it->end >= t) {
            owner = it->name;
            break;
          }
        }
      }
    }
    add(scope, *owner, static_cast<double>(e.durationNs()) * 1e-9);
  }
  profile.cpu_ops = sorted_totals(cpu);
  profile.device_ops = sorted_totals(device);
  profile.scopes = sorted_totals(scope);
  if (!trace_path.empty()) result->save(trace_path);
  return profile;
}

}  // namespace gsa
