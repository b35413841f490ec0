// Private to gsa_kernels: the launch functions' dispatch from runtime shapes to template instances.
//   with_group(group, f)             f(std::integral_constant<int, G>{}) for G = group in {1, 2, 4, 8};
//   with_type_and_dim(p, f)          f(TypeTag<T>{}, std::integral_constant<int, D>{}) for T = __nv_bfloat16 or
//                                    __half (p.dtype) and D = p.head_dim in {64, 128};
// both return f's Status, or kInvalidArgument for a value outside the lists;
//   launch_with_smem(kernel, grid, threads, smem, stream, p)   kernel<<<grid, threads, smem, stream>>>(p) after
//                                    raising the kernel's dynamic shared-memory limit to smem; kCudaError if
//                                    either fails;
//   env_int(name, fallback)          an integer switch from the environment (fallback when unset); callers keep
//                                    it in a static to read it once;
//   opt_in_dynamic_smem<kernel>(n)   raises kernel's dynamic shared-memory limit to n bytes (needed above 48 KiB)
//                                    once per device; false on a CUDA error. Its first call on a device must come
//                                    before any CUDA graph capture (the decode graph's first step runs eagerly).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <type_traits>

#include "gsa/kernels/lse_merge.h"         // Status
#include "gsa/kernels/sparse_attention.h"  // DType

namespace gsa::kernels::detail {

template <typename T>
struct TypeTag {
  using type = T;
};

template <typename F>
Status with_group(int group, F&& f) {
  switch (group) {
    case 1:
      return f(std::integral_constant<int, 1>{});
    case 2:
      return f(std::integral_constant<int, 2>{});
    case 4:
      return f(std::integral_constant<int, 4>{});
    case 8:
      return f(std::integral_constant<int, 8>{});
    default:
      return Status::kInvalidArgument;
  }
}

template <typename Params, typename F>
Status with_type_and_dim(const Params& p, F&& f) {
  const bool bf16 = p.dtype == DType::kBFloat16;
  if (p.head_dim == 64) {
    return bf16 ? f(TypeTag<__nv_bfloat16>{}, std::integral_constant<int, 64>{})
                : f(TypeTag<__half>{}, std::integral_constant<int, 64>{});
  }
  if (p.head_dim == 128) {
    return bf16 ? f(TypeTag<__nv_bfloat16>{}, std::integral_constant<int, 128>{})
                : f(TypeTag<__half>{}, std::integral_constant<int, 128>{});
  }
  return Status::kInvalidArgument;
}

inline int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v == nullptr ? fallback : std::atoi(v);
}

template <auto kKernel>
bool opt_in_dynamic_smem(int64_t bytes) {
  static std::atomic<uint64_t> opted_in{0};  // a bit per device
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device >= 64) return false;
  if ((opted_in.load() >> device & 1) == 0) {
    if (cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)) != cudaSuccess) {
      return false;
    }
    opted_in.fetch_or(uint64_t{1} << device);
  }
  return true;
}

template <typename Params>
Status launch_with_smem(void (*kernel)(Params), dim3 grid, int threads, size_t smem, cudaStream_t stream,
                        const Params& p) {
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)) != cudaSuccess) {
    return Status::kCudaError;
  }
  kernel<<<grid, threads, smem, stream>>>(p);
  return cudaGetLastError() == cudaSuccess ? Status::kOk : Status::kCudaError;
}

}  // namespace gsa::kernels::detail
