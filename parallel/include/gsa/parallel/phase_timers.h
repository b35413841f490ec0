// Phase timers: where the time of a sequence-parallel step goes, per rank (gsa bench step, gsa experiment scale).
// A small process-wide registry of accumulated wall time per phase, off by default; the parallel code marks its
// phases with ScopedPhase, which costs one relaxed atomic load when the registry is off.
//
// Contract:
// - PhaseTimers::enable(device) turns timing on and zeroes the totals; disable() turns it off (totals kept).
//   Only a benchmark enables it. While enabled, a ScopedPhase adds the wall time from its construction to its
//   destruction to its phase's total. On a CUDA device it synchronizes the device at both ends (so the time is
//   the device work of the scope, not its launch); with timing off it never synchronizes.
// - Scopes of the same thread nest: an inner scope's time is taken out of the enclosing scope's phase, so the
//   phases of one thread never count the same interval twice (their sum is at most the wall time).
// - Collectives that autograd differentiates (autograd_collectives.h) remember the innermost phase of the thread
//   that built them (current_phase()) and time their backward under that phase, so the gist-tree all-gather's
//   reduce-scatter in backward counts as gist tree, the reverse halo as halo, and so on.
// - Thread-safe: the backward may run on autograd's device threads.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>

#include <ATen/ATen.h>

namespace gsa {

enum class Phase : int {
  kNone = -1,
  kAttention = 0,   // the attention compute of a layer (forward; decode: the local sparse decode)
  kGistTree,        // the replicated gists + sinks: all-gather (forward), reduce-scatter (backward)
  kHalo,            // the halo exchange and its reverse
  kRouting,         // unfold routing: both all-to-alls and the owners' attention over the routed queries
  kGradAllReduce,   // GradientSync::finish: the gradient all-reduce still to wait for after backward (exposed)
  kDecodeMerge,     // distributed decode: the all-gather of the partial outputs and their merge
  kCount
};

constexpr int kNumPhases = static_cast<int>(Phase::kCount);

// "attention", "gist_tree", "halo", "routing", "grad_allreduce", "decode_merge" (CSV column stems).
const char* phase_name(Phase phase);

class PhaseTimers {
 public:
  static void enable(const at::Device& device);
  static void disable();
  static bool enabled();
  static void reset();
  // Accumulated seconds per phase since enable() / reset().
  static std::array<double, kNumPhases> seconds();
  // The innermost phase open on this thread (kNone when none, or timing is off).
  static Phase current_phase();
};

// Times one phase on this thread while PhaseTimers is enabled (see the contract above).
class ScopedPhase {
 public:
  explicit ScopedPhase(Phase phase);
  ~ScopedPhase();
  ScopedPhase(const ScopedPhase&) = delete;
  ScopedPhase& operator=(const ScopedPhase&) = delete;

 private:
  Phase phase_;
  bool active_ = false;
  Phase outer_ = Phase::kNone;
  std::chrono::steady_clock::time_point start_;
  double inner_seconds_ = 0;  // nested scopes' time, taken out of this one
  ScopedPhase* outer_scope_ = nullptr;
};

// Waits for the work queued on device (a CUDA device; nothing to wait for on the CPU).
void synchronize_device(const at::Device& device);

}  // namespace gsa
