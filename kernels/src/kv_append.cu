// kv_append_cuda: one thread per 16-byte chunk of a new K or V row (grid over batch x heads x chunks x 2).
#include <cuda_runtime.h>

#include "gsa/kernels/kv_append.h"

namespace gsa::kernels {
namespace {

__global__ void kv_append_kernel(const __grid_constant__ KvAppendParams p) {
  const int chunks = p.head_dim / 8;
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t per_tensor = int64_t(p.batch) * p.kv_heads * chunks;
  if (i >= 2 * per_tensor) return;
  const bool value = i >= per_tensor;
  const int64_t j = value ? i - per_tensor : i;
  const int c = static_cast<int>(j % chunks), kv = static_cast<int>(j / chunks % p.kv_heads);
  const int b = static_cast<int>(j / chunks / p.kv_heads);
  const uint16_t* src = static_cast<const uint16_t*>(value ? p.v_new : p.k_new) + b * p.new_stride[0] +
                        kv * p.new_stride[1] + c * 8;
  const KvRows& dst = value ? p.v : p.k;
  uint16_t* out = dst.head<uint16_t>(b, kv, p.kv_heads) + p.positions[b] * dst.row_stride + c * 8;
  *reinterpret_cast<uint4*>(out) = *reinterpret_cast<const uint4*>(src);
}

}  // namespace

Status kv_append_cuda(const KvAppendParams& p, void* stream) {
  if (p.batch < 0 || p.kv_heads < 1 || p.head_dim < 8 || p.head_dim % 8 != 0 || !p.k_new || !p.v_new ||
      !p.positions || p.k.empty() || p.v.empty()) {
    return Status::kInvalidArgument;
  }
  const int64_t threads = 2 * int64_t(p.batch) * p.kv_heads * (p.head_dim / 8);
  if (threads == 0) return Status::kOk;
  kv_append_kernel<<<static_cast<unsigned>((threads + 255) / 256), 256, 0, static_cast<cudaStream_t>(stream)>>>(p);
  return cudaGetLastError() == cudaSuccess ? Status::kOk : Status::kCudaError;
}

}  // namespace gsa::kernels
