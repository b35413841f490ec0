// Programmatic dependent launch (Hopper; CUDA's "PDL"): a decode step is a chain of ~190 small kernels, and
// between two of them the GPU would otherwise drain the first grid, then launch and ramp up the second. A kernel
// launched by launch_dependent may start while the kernel before it in the stream still runs, as soon as every
// CTA of that kernel has called allow_dependent_launch() (or exited); it must call wait_for_prior_grids() before
// it reads anything the kernel before it writes or writes anything that kernel reads.
//
// The rules for the kernels launched here:
// - every thread calls wait_for_prior_grids() before it can exit (an exit before the wait could let the grid
//   complete ahead of its predecessor), so a grid completes only after the grid before it: the chain stays
//   ordered transitively;
// - allow_dependent_launch() comes after the wait, so when a kernel starts, every kernel two or more back in the
//   stream has completed and its writes are visible. Work before the wait may read what the immediate
//   predecessor does not write: the skinny GEMM streams its first weight tiles there.
// Without the launch attribute both calls are no-ops and the stream serialises the kernels as usual. GSA_PDL in
// the environment switches it per kernel family (an A/B switch and a way out): unset, every family; otherwise a
// bit mask of LaunchFamily (0: none). CUDA graphs capture the dependency as a programmatic edge.
#pragma once

#include <cuda_runtime.h>

#include <cstdlib>
#include <utility>

namespace gsa::kernels::detail {

// Blocks until the grids this one depends on have completed and their writes are visible.
__device__ __forceinline__ void wait_for_prior_grids() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Lets the next kernel of the stream launch (it still waits for this grid in its wait_for_prior_grids()).
__device__ __forceinline__ void allow_dependent_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

enum LaunchFamily : int { kGemmLaunch = 1, kStepOpsLaunch = 2, kSelectionLaunch = 4, kSparseDecodeLaunch = 8 };

// Whether a family's launches may overlap their predecessor (GSA_PDL, read once).
inline bool dependent_launch_enabled(LaunchFamily family) {
  static const int mask = [] {
    const char* v = std::getenv("GSA_PDL");
    return v == nullptr ? 15 : std::atoi(v);
  }();
  return (mask & family) != 0;
}

// kernel<<<grid, block, smem, stream>>>(args...), allowed to overlap the stream's previous kernel (see above).
template <typename... Params, typename... Args>
cudaError_t launch_dependent(LaunchFamily family, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                             cudaStream_t stream, Args&&... args) {
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[0].val.programmaticStreamSerializationAllowed = 1;
  config.attrs = attribute;
  config.numAttrs = dependent_launch_enabled(family) ? 1 : 0;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

}  // namespace gsa::kernels::detail
