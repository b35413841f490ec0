// Warms the GPU's L2 cache with byte ranges a later kernel will read: one launch prefetches every 128-byte line of
// up to kL2PrefetchMaxSpans spans into L2 (prefetch.global.L2, spread over a grid; no thread waits for the data).
//
// Why: in a decode step at long context the attention of a layer (selection and sparse decode: ~40 us at 128K
// tokens on an H200) runs on a few SMs and leaves HBM nearly idle, while the projections after it only stream their
// weights from HBM. A prefetch on a side stream, started with the attention, can bring the layer's next weights
// (o_proj, down_proj) into L2 meanwhile (runtime/l2_prefetch.h; docs/PERFORMANCE.md has the measurement).
//
// Semantics: none. A prefetch reads the spans into L2 only; it writes no memory and changes no result, whatever
// the spans hold (the spans must be readable device memory).
//
// Contract: framework-free (raw device pointers, a cudaStream_t passed as void*, a Status; no allocation, no host
// synchronisation: capturable in a CUDA graph). l2_prefetch_cuda: kInvalidArgument for a bad count or a span with
// a null pointer or negative size; kNoCuda in a build without nvcc. There is no CPU twin: a prefetch has no result
// to compare.
#pragma once

#include <cstdint>

#include "gsa/kernels/lse_merge.h"  // Status

namespace gsa::kernels {

inline constexpr int32_t kL2PrefetchMaxSpans = 4;
inline constexpr int64_t kL2PrefetchLine = 128;  // bytes one prefetch instruction brings in

struct L2PrefetchSpan {
  const void* begin = nullptr;  // device memory
  int64_t bytes = 0;
};

struct L2PrefetchParams {
  L2PrefetchSpan spans[kL2PrefetchMaxSpans];
  int32_t count = 0;  // spans used, 0..kL2PrefetchMaxSpans (0: nothing launched)
};

Status l2_prefetch_cuda(const L2PrefetchParams& params, void* stream);

}  // namespace gsa::kernels
