// Generator::generate_ahead: greedy decoding that never leaves the device waiting for the host.
//
// A plain decode loop waits for each token on the host before it queues the next step: the graph launch, the
// plan's upload and the argmax's copy back sit between two steps, and the GPU idles through them (0.10-0.13 ms of
// a 1.6-1.9 ms step of a 1B model on an H200, `gsa bench serve`'s step_ms against device_ms). Here a step is
// the captured forward, the greedy choice (Sampler::greedy_into) and the plan's move to the chosen token
// (DecodePlan::advance_on_device), so step k + 1 reads step k's token where step k left it: the host queues up to
// kDecodeAhead steps and reads each token (an asynchronous copy into pinned memory and an event) while the next
// step runs, then appends it to the layout and follows it in the plan's host copies (advance_host).
//
// The loop ends where the plain loop ends (run_decode_loop: max_new_tokens, a stop token, the positions' limit);
// steps queued past the end are dropped: their K/V rows lie past the layout's end (the next step overwrites them)
// and DecodePlan::rewind_device takes their plan moves back, so the generator is left exactly as the plain loop
// leaves it. Growing the cache (every kKvBlockPositions positions) waits for the queued steps first: the graphs
// are captured again on the new cache.
//
// Off by default (Generator::set_decode_ahead). Each step's GPU time and the GPU's idle time before it are
// recorded (CUDA events, GenerationStats): on an H200 (2026-12-03) the GPU never idled between steps; with the
// one-CTA greedy kernel (44 us) the loop was no faster than the plain one; with greedy_choice's grid over the
// vocabulary (5 us) 1-3% a token faster at 32K and 128K tokens, even at 1M, and 3-9% slower at 512K, where its
// step's GPU time was 0.13-0.2 ms above the plain step's device time (unexplained: next, ncu on both graphs).
#include <chrono>

#include "decode_loop_rules.h"
#include "gsa/runtime/decode_attention.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/generation.h"

#ifdef GSA_HAVE_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace gsa {
namespace {

// The choices of queued steps on their way to the host, oldest first: step k's [id, has_nan] copied into pinned
// slot k % kSlots, with CUDA events at the step's start (begin(), before its replay) and after the copy (push()),
// which say when the copy is done and, read at pop(), how long the GPU ran the step and how long it sat idle
// before it. On the CPU the copy is done when push returns and nothing is timed.
class ChoiceQueue {
 public:
  // kDecodeAhead queued steps, the step being popped and the one before it (its end event times the idle gap).
  static constexpr int64_t kSlots = kDecodeAhead + 2;

  struct Choice {
    int64_t id = 0;
    bool has_nan = false;
    double gpu_ms = -1, idle_ms = -1;  // CUDA only; idle_ms from the second step on
  };

  explicit ChoiceQueue(at::Device device)
      : device_(device),
        host_(at::empty({kSlots, 2}, at::TensorOptions(at::kLong).pinned_memory(device.is_cuda()))) {
#ifdef GSA_HAVE_CUDA
    for (int64_t i = 0; i < kSlots; ++i) {
      start_.emplace_back(cudaEventDefault);  // timed events
      done_.emplace_back(cudaEventDefault);
    }
#endif
  }

  int64_t size() const { return pushed_ - popped_; }

  // Marks the start of the step about to be queued (call before its replay).
  void begin() {
#ifdef GSA_HAVE_CUDA
    if (device_.is_cuda()) start_[pushed_ % kSlots].record(stream());
#endif
  }

  // Queues the copy of chosen [2] (on the device, written by the step just queued).
  void push(const at::Tensor& chosen) {
    GSA_CHECK(size() < kDecodeAhead, "decode ahead: more than ", kDecodeAhead, " steps queued");
    const int64_t slot = pushed_ % kSlots;
    host_[slot].copy_(chosen, /*non_blocking=*/device_.is_cuda());
#ifdef GSA_HAVE_CUDA
    if (device_.is_cuda()) done_[slot].record(stream());
#endif
    ++pushed_;
  }

  // The oldest choice (waits for its copy).
  Choice pop() {
    GSA_CHECK(size() > 0, "decode ahead: no step queued");
    const int64_t slot = popped_ % kSlots;
    Choice c;
#ifdef GSA_HAVE_CUDA
    if (device_.is_cuda()) {
      done_[slot].synchronize();
      c.gpu_ms = start_[slot].elapsed_time(done_[slot]);
      if (popped_ > 0) c.idle_ms = done_[(popped_ - 1) % kSlots].elapsed_time(start_[slot]);
    }
#endif
    const int64_t* v = host_[slot].data_ptr<int64_t>();
    c.id = v[0];
    c.has_nan = v[1] != 0;
    ++popped_;
    return c;
  }

  // Waits for every queued step (their choices stay queued).
  void wait_all() {
#ifdef GSA_HAVE_CUDA
    for (int64_t k = popped_; k < pushed_; ++k) {
      if (device_.is_cuda()) done_[k % kSlots].synchronize();
    }
#endif
  }

 private:
#ifdef GSA_HAVE_CUDA
  c10::cuda::CUDAStream stream() const { return c10::cuda::getCurrentCUDAStream(device_.index()); }
  std::vector<at::cuda::CUDAEvent> start_, done_;
#endif
  at::Device device_;
  at::Tensor host_;  // [kSlots, 2] int64, pinned on CUDA
  int64_t pushed_ = 0, popped_ = 0;
};

}  // namespace

std::vector<int64_t> Generator::generate_ahead(const SamplingOptions& sampling, Sampler& sampler,
                                               GenerationStats* stats, const std::function<void(int64_t)>& on_token) {
  using Clock = std::chrono::steady_clock;
  using detail::ms_since;
  at::NoGradGuard no_grad;
  std::vector<int64_t> out;
  auto start = Clock::now();
  const at::Tensor prompt_logits = prefill();
  if (stats != nullptr) stats->prefill_ms = ms_since(start);
  start = Clock::now();
  // run_decode_loop's end: after a chosen token, while the layout holds the tokens before it.
  auto finished = [&](int64_t token) {
    return detail::decode_loop_ends(sampling, token, static_cast<int64_t>(out.size()), has_room());
  };
  auto emit = [&](int64_t token) {
    out.push_back(token);
    if (on_token) on_token(token);
  };
  const int64_t first_token = sampler.sample(prompt_logits);
  emit(first_token);
  if (finished(first_token)) {
    if (stats != nullptr) stats->decode_ms = ms_since(start);
    return out;
  }
  prepare_step(first_token);  // the first queued step writes its K/V and chooses the next
  const int64_t first = layout_.size() - 1;  // the position the first queued step runs at

  const at::Device device = model_.device();
  const at::Tensor chosen = at::empty({2}, at::TensorOptions(at::kLong).device(device));  // [id, has_nan]
  auto step_and_choose = [&] {
    DecodeLayerAttention layer_attention(*decode_, attention_, cache_);
    const at::Tensor logits = model_.forward(decode_->tokens(), decode_->rope_pos(), layer_attention, attention_,
                                             attention_.selection.enabled);  // [1, 1, V]
    sampler.greedy_into(logits[0][0], chosen);
    decode_->advance_on_device(chosen.narrow(0, 0, 1));
    return chosen;
  };
  ChoiceQueue queue(device);
  int64_t queued = 0;  // steps queued so far: step k runs at position first + k and chooses out[k + 1]
  int64_t followed = 0;  // device plan moves the host copies followed
  auto wind_up = [&] {
    queue.wait_all();
    decode_->rewind_device(queued - followed);
  };
  try {
    for (;;) {
      // A step is queued while it may be needed: its token is not known to end the loop, it chooses a token
      // max_new_tokens allows, and its position is one the sequence may reach.
      while (queue.size() < kDecodeAhead && queued + 1 < sampling.max_new_tokens && first + queued < max_positions_) {
        if (cache_.capacity() < first + queued + 1) {
          queue.wait_all();  // the graphs and the cache they write are replaced
          reserve(first + queued + 1);
        }
        queue.begin();
        queue.push(capturable_ ? ahead_graph_.run(step_and_choose, /*copy_result=*/false) : step_and_choose());
        ++queued;
      }
      const ChoiceQueue::Choice choice = queue.pop();
      GSA_CHECK(!choice.has_nan, "the model produced NaN logits");
      if (stats != nullptr && choice.gpu_ms >= 0) {
        stats->step_gpu_ms.push_back(choice.gpu_ms);
        if (choice.idle_ms >= 0) stats->step_idle_ms.push_back(choice.idle_ms);
      }
      const int64_t token = choice.id;
      emit(token);
      if (finished(token)) break;
      layout_.append_raw(token);  // the step queued after the one that chose it runs at its position
      decode_->advance_host({token});
      ++followed;
    }
  } catch (...) {
    wind_up();
    throw;
  }
  wind_up();
  if (stats != nullptr) stats->decode_ms = ms_since(start);
  return out;
}

}  // namespace gsa
