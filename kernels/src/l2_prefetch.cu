// l2_prefetch_cuda: a grid of one-warp CTAs; thread t of T issues pieces t, t + T, ... of every span, each one
// cp.async.bulk.prefetch.L2 of up to kL2PrefetchPiece bytes (the SM's copy engine fetches them into L2; the
// thread goes on at once, and the CTA may exit before the data arrives).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "gsa/kernels/l2_prefetch.h"
#include "pdl.cuh"

namespace gsa::kernels {
namespace {

constexpr int kThreads = 32;
constexpr int kPiecesPerThread = 4;  // at least, before the grid grows
constexpr int kMaxCtas = 64;

__global__ void __launch_bounds__(kThreads) l2_prefetch_kernel(const __grid_constant__ L2PrefetchParams p) {
  // Issued after the kernel before has completed: the prefetch must not take HBM bandwidth from it.
  detail::wait_for_prior_grids();
  detail::allow_dependent_launch();
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  const int64_t thread = int64_t(blockIdx.x) * kThreads + threadIdx.x, threads = int64_t(gridDim.x) * kThreads;
  for (int s = 0; s < p.count; ++s) {
    const uint64_t start = reinterpret_cast<uint64_t>(p.spans[s].begin);
    const uint64_t begin = (start + 15) & ~uint64_t{15}, end = (start + p.spans[s].bytes) & ~uint64_t{15};
    if (end <= begin) continue;
    const int64_t pieces = int64_t((end - begin + kL2PrefetchPiece - 1) / kL2PrefetchPiece);
    for (int64_t i = thread; i < pieces; i += threads) {
      const uint64_t at = begin + uint64_t(i) * kL2PrefetchPiece;
      const uint32_t bytes = static_cast<uint32_t>(min(uint64_t{kL2PrefetchPiece}, end - at));
      asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(at), "r"(bytes) : "memory");
    }
  }
#endif
}

}  // namespace

Status l2_prefetch_cuda(const L2PrefetchParams& p, void* stream) {
  if (p.count < 0 || p.count > kL2PrefetchMaxSpans) return Status::kInvalidArgument;
  int64_t pieces = 0;
  for (int s = 0; s < p.count; ++s) {
    if (p.spans[s].begin == nullptr || p.spans[s].bytes < 0) return Status::kInvalidArgument;
    pieces += (p.spans[s].bytes + kL2PrefetchPiece - 1) / kL2PrefetchPiece;
  }
  if (pieces == 0) return Status::kOk;
  const int64_t per_cta = int64_t{kThreads} * kPiecesPerThread;
  const auto ctas = static_cast<unsigned>(std::clamp<int64_t>((pieces + per_cta - 1) / per_cta, 1, kMaxCtas));
  const cudaError_t e = detail::launch_dependent(detail::kStepOpsLaunch, l2_prefetch_kernel, ctas, kThreads, 0,
                                                 static_cast<cudaStream_t>(stream), p);
  return e == cudaSuccess ? Status::kOk : Status::kCudaError;
}

}  // namespace gsa::kernels
