#include "gsa/parallel/phase_timers.h"

#include <atomic>
#include <mutex>

#include "gsa/runtime/error.h"

namespace gsa {
namespace {

struct Registry {
  std::atomic<bool> on{false};
  std::mutex mutex;
  std::array<double, kNumPhases> totals{};  // guarded by mutex
  at::Device device{at::kCPU};              // guarded by mutex (written only while off)
};

Registry& registry() {
  static Registry r;
  return r;
}

thread_local ScopedPhase* innermost = nullptr;
thread_local Phase innermost_phase = Phase::kNone;

}  // namespace

const char* phase_name(Phase phase) {
  switch (phase) {
    case Phase::kAttention: return "attention";
    case Phase::kGistTree: return "gist_tree";
    case Phase::kHalo: return "halo";
    case Phase::kRouting: return "routing";
    case Phase::kGradAllReduce: return "grad_allreduce";
    case Phase::kDecodeMerge: return "decode_merge";
    case Phase::kNone:
    case Phase::kCount: break;
  }
  throw Error(str_cat("phase_name: not a phase (", static_cast<int>(phase), ")"));
}

void synchronize_device(const at::Device& device) {
  if (device.is_cuda()) (void)at::zeros({1}, at::TensorOptions().device(device)).item<float>();
}

void PhaseTimers::enable(const at::Device& device) {
  Registry& r = registry();
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    r.device = device;
    r.totals.fill(0);
  }
  r.on.store(true, std::memory_order_release);
}

void PhaseTimers::disable() { registry().on.store(false, std::memory_order_release); }

bool PhaseTimers::enabled() { return registry().on.load(std::memory_order_relaxed); }

void PhaseTimers::reset() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.totals.fill(0);
}

std::array<double, kNumPhases> PhaseTimers::seconds() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.totals;
}

Phase PhaseTimers::current_phase() { return enabled() ? innermost_phase : Phase::kNone; }

ScopedPhase::ScopedPhase(Phase phase) : phase_(phase) {
  if (phase == Phase::kNone || !PhaseTimers::enabled()) return;
  GSA_CHECK(phase != Phase::kCount, "ScopedPhase: not a phase");
  active_ = true;
  Registry& r = registry();
  at::Device device = at::kCPU;
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    device = r.device;
  }
  synchronize_device(device);
  outer_scope_ = innermost;
  outer_ = innermost_phase;
  innermost = this;
  innermost_phase = phase;
  start_ = std::chrono::steady_clock::now();
}

ScopedPhase::~ScopedPhase() {
  if (!active_) return;
  Registry& r = registry();
  at::Device device = at::kCPU;
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    device = r.device;
  }
  try {
    synchronize_device(device);
  } catch (...) {  // a destructor must not throw; the device error surfaces at the next call
  }
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    r.totals[static_cast<size_t>(phase_)] += total - inner_seconds_;
  }
  if (outer_scope_ != nullptr) outer_scope_->inner_seconds_ += total;
  innermost = outer_scope_;
  innermost_phase = outer_;
}

}  // namespace gsa
