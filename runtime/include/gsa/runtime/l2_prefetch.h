// Warming L2 with weights a decode step reads soon (kernels/l2_prefetch.h).
//
// prefetch_to_l2(tensors, max_bytes) queues, on the current stream of their device, one kernel that prefetches the
// first max_bytes of `tensors` (in order, each contiguous and on one CUDA device) into the GPU's L2. It changes no
// tensor and no result and waits for nothing (capturable in a CUDA graph); with CPU tensors, max_bytes 0 or no
// tensors it does nothing. At most kernels::kL2PrefetchMaxSpans tensors.
//
// L2Prefetcher runs such prefetches beside the work that follows them: prefetch() forks a side stream after
// everything queued so far on the current stream and queues the prefetch there, so the next kernels of the
// current stream do not wait for it; join() (and the destructor) makes the current stream wait for every
// prefetch forked so far (a CUDA graph capture must join its side streams before it ends). Off CUDA, or with
// max_bytes 0, it does nothing.
//
// decode_weight_prefetch_bytes(): the bytes LlamaModel::fused_decode_layers prefetches a layer, while the layer's
// attention runs, of the weights the layer reads after it (o_proj, down_proj, then gate/up):
// GSA_L2_PREFETCH_MB (an integer >= 0, in MiB; 0, the default, turns it off), read once.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace gsa {

void prefetch_to_l2(const std::vector<at::Tensor>& tensors, int64_t max_bytes);
int64_t decode_weight_prefetch_bytes();

class L2Prefetcher {
 public:
  L2Prefetcher(at::Device device, int64_t max_bytes);
  ~L2Prefetcher();
  L2Prefetcher(const L2Prefetcher&) = delete;
  L2Prefetcher& operator=(const L2Prefetcher&) = delete;

  void prefetch(const std::vector<at::Tensor>& tensors);
  void join();

 private:
  struct Side;
  int64_t max_bytes_;
  std::unique_ptr<Side> side_;  // null off CUDA or with max_bytes 0
};

}  // namespace gsa
