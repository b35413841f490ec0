// Warming L2 with weights a decode step reads soon (kernels/l2_prefetch.h): prefetch_to_l2 queues, on the
// current stream of their device, one kernel that prefetches the first max_bytes of `tensors` (in order, each
// contiguous and on one CUDA device) into the GPU's L2. It changes no tensor and no result and waits for nothing
// (capturable in a CUDA graph); with CPU tensors, max_bytes 0 or no tensors it does nothing. At most
// kernels::kL2PrefetchMaxSpans tensors.
//
// decode_weight_prefetch_bytes(): the bytes LlamaModel::fused_decode_layers prefetches a layer, while the layer's
// attention runs, of the weights the layer reads after it (o_proj, down_proj, then gate/up):
// GSA_L2_PREFETCH_MB (an integer >= 0, in MiB; 0 turns it off) or the measured default, read once.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace gsa {

void prefetch_to_l2(const std::vector<at::Tensor>& tensors, int64_t max_bytes);
int64_t decode_weight_prefetch_bytes();

}  // namespace gsa
