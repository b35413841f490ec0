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
#include <algorithm>
#include <chrono>
#include <deque>

#include "gsa/runtime/decode_attention.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/generation.h"

#ifdef GSA_HAVE_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace gsa {
namespace {

// The choices of queued steps on their way to the host, oldest first: each step's [id, has_nan] copied into its
// own pinned slot, with an event that says when the copy is done (on the CPU the copy is done when push returns).
class ChoiceQueue {
 public:
  explicit ChoiceQueue(at::Device device)
      : device_(device),
        host_(at::empty({kDecodeAhead, 2}, at::TensorOptions(at::kLong).pinned_memory(device.is_cuda()))) {
#ifdef GSA_HAVE_CUDA
    events_.resize(kDecodeAhead);
#endif
  }

  int64_t size() const { return static_cast<int64_t>(slots_.size()); }

  // Queues the copy of chosen [2] (on the device, written by the step just queued).
  void push(const at::Tensor& chosen) {
    GSA_CHECK(size() < kDecodeAhead, "decode ahead: more than ", kDecodeAhead, " steps queued");
    const int64_t slot = (first_ + size()) % kDecodeAhead;
    host_[slot].copy_(chosen, /*non_blocking=*/device_.is_cuda());
#ifdef GSA_HAVE_CUDA
    if (device_.is_cuda()) events_[slot].record(c10::cuda::getCurrentCUDAStream(device_.index()));
#endif
    slots_.push_back(slot);
  }

  // The oldest choice (waits for its copy): {id, has_nan}.
  std::pair<int64_t, bool> pop() {
    GSA_CHECK(!slots_.empty(), "decode ahead: no step queued");
    const int64_t slot = slots_.front();
    slots_.pop_front();
    first_ = (slot + 1) % kDecodeAhead;
#ifdef GSA_HAVE_CUDA
    if (device_.is_cuda()) events_[slot].synchronize();
#endif
    const int64_t* v = host_[slot].data_ptr<int64_t>();
    return {v[0], v[1] != 0};
  }

  // Waits for every queued step (their choices stay queued).
  void wait_all() {
#ifdef GSA_HAVE_CUDA
    for (int64_t slot : slots_) {
      if (device_.is_cuda()) events_[slot].synchronize();
    }
#endif
  }

 private:
  at::Device device_;
  at::Tensor host_;  // [kDecodeAhead, 2] int64, pinned on CUDA
  std::deque<int64_t> slots_;
  int64_t first_ = 0;
#ifdef GSA_HAVE_CUDA
  std::vector<at::cuda::CUDAEvent> events_;
#endif
};

}  // namespace

std::vector<int64_t> Generator::generate_ahead(const SamplingOptions& sampling, Sampler& sampler,
                                               GenerationStats* stats, const std::function<void(int64_t)>& on_token) {
  using Clock = std::chrono::steady_clock;
  auto ms_since = [](Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
  };
  at::NoGradGuard no_grad;
  std::vector<int64_t> out;
  auto start = Clock::now();
  const at::Tensor prompt_logits = prefill();
  if (stats != nullptr) stats->prefill_ms = ms_since(start);
  start = Clock::now();
  // run_decode_loop's end: after a chosen token, while the layout holds the tokens before it.
  auto finished = [&](int64_t token) {
    const bool stop =
        std::find(sampling.stop_tokens.begin(), sampling.stop_tokens.end(), token) != sampling.stop_tokens.end();
    return stop || static_cast<int64_t>(out.size()) == sampling.max_new_tokens || !has_room();
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
        queue.push(capturable_ ? ahead_graph_.run(step_and_choose, /*copy_result=*/false) : step_and_choose());
        ++queued;
      }
      const auto [token, has_nan] = queue.pop();
      GSA_CHECK(!has_nan, "the model produced NaN logits");
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
