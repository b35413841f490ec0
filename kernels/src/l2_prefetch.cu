// l2_prefetch_cuda: a grid of kThreads-thread CTAs; thread t of T prefetches lines t, t + T, ... of every span,
// one prefetch.global.L2 a 128-byte line (no register waits for it: the thread goes on at once). The first
// version issued cp.async.bulk.prefetch.L2 of 64 KiB pieces from one-warp CTAs on the step's own stream: every
// launch then cost ~43 us whatever the bytes (42 or 64 MiB), 0.69 ms a 16-layer step on an H200
// (docs/PERFORMANCE.md, twelfth session).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "gsa/kernels/l2_prefetch.h"

namespace gsa::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int kLinesPerThread = 8;  // at least, before the grid grows
constexpr int kMaxCtas = 264;       // two an SM of an H100/H200

__global__ void __launch_bounds__(kThreads) l2_prefetch_kernel(const __grid_constant__ L2PrefetchParams p) {
  const int64_t thread = int64_t(blockIdx.x) * kThreads + threadIdx.x, threads = int64_t(gridDim.x) * kThreads;
  for (int s = 0; s < p.count; ++s) {
    const char* begin = static_cast<const char*>(p.spans[s].begin);
    const int64_t lines = (p.spans[s].bytes + kL2PrefetchLine - 1) / kL2PrefetchLine;
    for (int64_t i = thread; i < lines; i += threads) {  // line i's address is inside the span
      asm volatile("prefetch.global.L2 [%0];\n" ::"l"(begin + i * kL2PrefetchLine));
    }
  }
}

}  // namespace

Status l2_prefetch_cuda(const L2PrefetchParams& p, void* stream) {
  if (p.count < 0 || p.count > kL2PrefetchMaxSpans) return Status::kInvalidArgument;
  int64_t lines = 0;
  for (int s = 0; s < p.count; ++s) {
    if (p.spans[s].begin == nullptr || p.spans[s].bytes < 0) return Status::kInvalidArgument;
    lines += (p.spans[s].bytes + kL2PrefetchLine - 1) / kL2PrefetchLine;
  }
  if (lines == 0) return Status::kOk;
  const int64_t per_cta = int64_t{kThreads} * kLinesPerThread;
  const auto ctas = static_cast<unsigned>(std::clamp<int64_t>((lines + per_cta - 1) / per_cta, 1, kMaxCtas));
  l2_prefetch_kernel<<<ctas, kThreads, 0, static_cast<cudaStream_t>(stream)>>>(p);
  return cudaGetLastError() == cudaSuccess ? Status::kOk : Status::kCudaError;
}

}  // namespace gsa::kernels
