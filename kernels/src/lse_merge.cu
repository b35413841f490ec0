// lse_merge_cuda: one warp per row, lanes over D. Each warp first reads all P part lse values of its row
// (lanes strided over P), reduces their max and the sum of exp(l_p - max) with warp shuffles, then walks D in
// chunks of 32 * kVec floats, accumulating sum_p w_p * o_p[r] in fp32 registers with w_p = exp(l_p - lse).
// Parts whose lse is -inf have weight 0 and are skipped (their output rows are never read). No allocation;
// rows beyond the grid are covered by a grid-stride loop.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "gsa/kernels/lse_merge.h"
#include "lse_merge_params.h"
#include "row_team.cuh"

namespace gsa::kernels {
namespace {

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 8;               // 256 threads, 8 rows in flight per block
constexpr int kMinBlocksPerSm = 4;              // caps registers at 64: ptxas's default cap (32) spills kVec = 1
constexpr int64_t kMaxBlocks = int64_t{1} << 20;  // grid-stride beyond this

template <int kVec>
struct VecT;
template <>
struct VecT<1> {
  using type = float;
};
template <>
struct VecT<4> {
  using type = float4;
};

__device__ __forceinline__ void axpy(float w, float x, float* acc) { acc[0] = fmaf(w, x, acc[0]); }
__device__ __forceinline__ void axpy(float w, float4 x, float* acc) {
  acc[0] = fmaf(w, x.x, acc[0]);
  acc[1] = fmaf(w, x.y, acc[1]);
  acc[2] = fmaf(w, x.z, acc[2]);
  acc[3] = fmaf(w, x.w, acc[3]);
}
__device__ __forceinline__ void store(float* dst, const float* acc, VecT<1>) { *dst = acc[0]; }
__device__ __forceinline__ void store(float* dst, const float* acc, VecT<4>) {
  *reinterpret_cast<float4*>(dst) = make_float4(acc[0], acc[1], acc[2], acc[3]);
}

// kVec = 4 requires D % 4 == 0 and 16-byte aligned out pointers (checked on the host).
template <int kVec>
__global__ void __launch_bounds__(kWarp* kWarpsPerBlock, kMinBlocksPerSm)
    lse_merge_kernel(const __grid_constant__ LseMergeParams params) {
  using Vec = typename VecT<kVec>::type;
  const int lane = threadIdx.x % kWarp;
  const int64_t P = params.num_parts, R = params.rows, D = params.dim;
  const int64_t first_row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  const int64_t row_stride = static_cast<int64_t>(gridDim.x) * kWarpsPerBlock;

  for (int64_t r = first_row; r < R; r += row_stride) {
    // 1. Every part's lse of this row: max, then sum of exp relative to the max (empty parts add 0).
    float max_lse = -INFINITY;
    for (int64_t p = lane; p < P; p += kWarp) max_lse = fmaxf(max_lse, params.partial_lse[p * R + r]);
    max_lse = detail::team_max<kWarp>(max_lse);
    float* out_row = params.out + r * D;
    if (max_lse == -INFINITY) {  // all parts empty: out = 0, lse = -inf (uniform across the warp)
      const float zero[kVec] = {};
      for (int64_t d = static_cast<int64_t>(lane) * kVec; d < D; d += kWarp * kVec) {
        store(out_row + d, zero, VecT<kVec>{});
      }
      if (lane == 0) params.lse[r] = -INFINITY;
      continue;
    }
    float sum = 0.0f;
    for (int64_t p = lane; p < P; p += kWarp) sum += expf(params.partial_lse[p * R + r] - max_lse);
    sum = detail::team_sum<kWarp>(sum);
    const float lse = max_lse + logf(sum);
    if (lane == 0) params.lse[r] = lse;

    // 2. out[r] = sum_p exp(l_p - lse) * o_p[r], lanes over D, kVec floats per lane per chunk.
    for (int64_t d = static_cast<int64_t>(lane) * kVec; d < D; d += kWarp * kVec) {
      float acc[kVec] = {};
      for (int64_t p = 0; p < P; ++p) {
        const float l = params.partial_lse[p * R + r];  // same address across the warp: one broadcast load
        if (l == -INFINITY) continue;                   // empty part: weight 0, row not read
        const float w = expf(l - lse);
        axpy(w, __ldg(reinterpret_cast<const Vec*>(params.partial_out + (p * R + r) * D + d)), acc);
      }
      store(out_row + d, acc, VecT<kVec>{});
    }
  }
}

bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

}  // namespace

Status lse_merge_cuda(const LseMergeParams& params, void* stream) {
  const Status status = detail::check_lse_merge_params(params);
  if (status != Status::kOk) return status;
  if (params.rows == 0) return Status::kOk;

  const int64_t blocks64 = (params.rows + kWarpsPerBlock - 1) / kWarpsPerBlock;
  const dim3 grid(static_cast<unsigned>(blocks64 < kMaxBlocks ? blocks64 : kMaxBlocks));
  const dim3 block(kWarp * kWarpsPerBlock);
  auto* cuda_stream = static_cast<cudaStream_t>(stream);
  const bool vec4 = params.dim % 4 == 0 && aligned16(params.partial_out) && aligned16(params.out);
  if (vec4) {
    lse_merge_kernel<4><<<grid, block, 0, cuda_stream>>>(params);
  } else {
    lse_merge_kernel<1><<<grid, block, 0, cuda_stream>>>(params);
  }
  return cudaGetLastError() == cudaSuccess ? Status::kOk : Status::kCudaError;
}

}  // namespace gsa::kernels
