// Gradient synchronisation over dp x sp (DESIGN.md section 5): parameters are replicated on every rank, so
// their gradients are summed over the world. LibTorch has no C++ DDP; this is ours.
//
// Contract:
// - Parameters are grouped into buckets of about bucket_bytes, in reverse registration order (the order in
//   which backward produces their gradients). A hook on every parameter copies its gradient into its bucket as
//   soon as autograd computes it; a bucket whose gradients are all in starts its all-reduce (asynchronous)
//   while backward goes on, so communication overlaps the rest of the backward pass.
// - What a rank contributes for a parameter is this backward's gradient plus the .grad() it held before (clear
//   .grad() between steps, as AdamW::zero_grad does). finish() (after backward) starts the buckets that are not
//   complete (a parameter that got no gradient counts as its .grad(), zero when undefined), waits for all of
//   them, and writes the summed gradients into each parameter's .grad().
// - Every rank must register the same parameters in the same order and run backward over the same graph
//   structure (the SPMD rule), so buckets start in the same order everywhere.
// - Gradient accumulation: set_sync(false) before the backward passes of all micro-batches but the last, whose
//   gradients then just accumulate in .grad() (no bucket, no communication; finish() must not be called);
//   set_sync(true) before the last one: each hook then buckets this pass's gradient plus the .grad() accumulated
//   so far, and finish() writes the world's sum of the whole accumulation.
// - scale multiplies the summed gradients (1 when the loss is already normalised over the world, as
//   sp_next_token_loss does).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <ATen/ATen.h>

#include "gsa/parallel/communicator.h"

namespace gsa {

class GradientSync {
 public:
  GradientSync(std::vector<at::Tensor> params, std::shared_ptr<Communicator> comm,
               int64_t bucket_bytes = 16 << 20, double scale = 1.0);
  ~GradientSync();
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  void finish();
  void set_sync(bool sync) { sync_ = sync; }

  int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }
  // Buckets whose all-reduce started from a hook during the current or last backward (overlap achieved).
  int64_t started_during_backward() const { return started_in_backward_; }

 private:
  struct Bucket {
    std::vector<size_t> params;      // indices into params_
    std::vector<int64_t> offsets;    // element offset of each parameter in the buffer
    int64_t size = 0;                // elements
    at::Tensor buffer;               // flat, the parameters' dtype and device
    int64_t pending = 0;             // gradients still to arrive this step
    std::vector<bool> arrived;
    std::unique_ptr<CommHandle> handle;
  };

  void on_gradient(size_t param_index, const at::Tensor& grad);
  void start(Bucket& bucket);
  void reset_step();

  std::vector<at::Tensor> params_;
  std::shared_ptr<Communicator> comm_;
  double scale_;
  std::vector<Bucket> buckets_;
  std::vector<std::pair<size_t, size_t>> where_;  // param -> (bucket, slot in bucket)
  std::vector<unsigned> hook_ids_;
  int64_t started_in_backward_ = 0;
  bool step_open_ = false;  // a gradient of this step arrived; finish() closes the step
  bool sync_ = true;        // false: gradients accumulate in .grad() without a bucket
};

}  // namespace gsa
