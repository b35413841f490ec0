// One decode step replayed as a CUDA graph. A decode step of a 1B model launches about a thousand small kernels
// (norms, projections, RoPE, cache append, selection, sparse decode, MLP per layer); on the host that costs
// ~10 ms, several times the GPU's work. Captured once and replayed, the step costs one launch.
//
// Contract:
// - run(forward) returns forward()'s result: the first call after construction or reset() runs it eagerly (the
//   warm-up: library handles, workspaces and lazily built tables are created outside any capture), the second
//   captures it on a side stream and replays it, later calls only replay. The result of a replay is a copy
//   (the captured output buffer is overwritten by the next replay) unless the caller asks for the buffer.
// - A replay re-runs the captured kernels on the captured device buffers: everything the step reads must be in
//   tensors whose storage stays put and whose contents the caller updates in place between steps (DecodePlan
//   uploads in place, selection tables advance in place). Host-side values baked into the capture (shapes,
//   kernel parameters, cache base pointers) must not change: the caller resets the graph when they may (a cache
//   grew, the batch changed).
// - forward must not synchronise with the host (no .item()); LlamaModel::forward skips its token check while a
//   capture is under way (decode callers check tokens on the host).
// - usable(device, options) is true for CUDA devices with options.cuda_graphs when built with CUDA; run() on an
//   unusable device just calls forward. Not thread-safe.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <memory>

#include "gsa/config/options.h"

namespace gsa {

class DecodeStepGraph {
 public:
  DecodeStepGraph();
  ~DecodeStepGraph();
  DecodeStepGraph(const DecodeStepGraph&) = delete;
  DecodeStepGraph& operator=(const DecodeStepGraph&) = delete;

  static bool usable(const at::Device& device, const AttentionOptions& options);
  // True while a CUDA graph capture is under way on the current stream (code that would synchronise skips).
  static bool capturing();

  // copy_result = false: a replay returns the captured output buffer itself, valid until the next replay (a
  // caller that reads it in stream order, e.g. by an asynchronous copy right after).
  at::Tensor run(const std::function<at::Tensor()>& forward, bool copy_result = true);
  void reset();                                   // the next run() warms up and captures again
  int64_t captures() const { return captures_; }  // how many times a graph was captured (tests, benches)

 private:
  struct Captured;
  std::unique_ptr<Captured> captured_;
  int calls_since_reset_ = 0;
  int64_t captures_ = 0;
};

}  // namespace gsa
