// CUDA kernels of decode_step_ops.h. Every thread moves 16-byte words (8 bf16/fp16 elements) and computes in
// fp32, rounding where LibTorch's ops round (see the header for the formulas):
//   rope_append_kernel   one thread per 8 elements of one head row of qkv (grid over batch x heads x D/8): q and
//                        k rows are rotated (the partner half read by the same thread), v rows copied; q goes to
//                        q_out, k and v to their cache rows.
//   add_rms_norm_kernel  one CTA per row; each thread keeps its (at most 4) rounded-sum words in registers, the
//                        fp32 sum of squares is reduced by warp shuffles and one shared-memory step.
//   silu_mul_kernel      one thread per 8 output elements.
// No -use_fast_math: expf, the division and rsqrtf are the same full-precision functions LibTorch's kernels use.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "dispatch.cuh"  // TypeTag
#include "pdl.cuh"
#include "gsa/kernels/decode_step_ops.h"
#include "rms_norm_rows.cuh"
#include "row_team.cuh"  // to_floats

namespace gsa::kernels {
namespace {

using detail::allow_dependent_launch;
using detail::from_floats;
using detail::kStepOpsLaunch;
using detail::launch_dependent;
using detail::load16;
using detail::round_to;
using detail::store16;
using detail::to_floats;
using detail::TypeTag;
using detail::wait_for_prior_grids;

constexpr int kElementwiseThreads = 128;  // rope_append and silu_mul CTAs
constexpr int kNormMaxThreads = detail::kNormMaxThreads;
constexpr int kNormWordsPerThread = kAddRmsNormMaxHidden / 8 / kNormMaxThreads;
static_assert(kNormWordsPerThread * kNormMaxThreads * 8 == kAddRmsNormMaxHidden, "hidden limit / CTA mismatch");

template <typename T>
__global__ void __launch_bounds__(kElementwiseThreads) rope_append_kernel(const __grid_constant__ RopeAppendParams p) {
  wait_for_prior_grids();  // qkv comes from the kernel before (pdl.cuh)
  allow_dependent_launch();
  // 1. Which 8 elements: word c of head h (q heads, then k heads, then v heads) of sequence b.
  const int D = p.head_dim, words = D / 8, heads = p.q_heads + 2 * p.kv_heads;
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= int64_t(p.batch) * heads * words) return;
  const int c = static_cast<int>(i % words), h = static_cast<int>(i / words % heads);
  const int b = static_cast<int>(i / words / heads);
  const T* row = static_cast<const T*>(p.qkv) + b * p.qkv_stride + int64_t(h) * D;  // [D] this head
  // 2. Every load in one round: the row's word, rope's operands (cos, sin, the partner word; value heads read
  //    them too and ignore them) and the destination's (the position, a per-sequence cache base). One basic block
  //    and one store at the end, so the compiler cannot place the destination's address arithmetic (which waits
  //    for its loads) ahead of rope's loads: two round trips became one.
  const int half = D / 2, partner = 8 * c + half;
  const uint4 own = load16(row + 8 * c);
  const uint4 cos_word = load16(static_cast<const T*>(p.cos) + b * p.cos_stride + 8 * c);
  const uint4 sin_word = load16(static_cast<const T*>(p.sin_rotated) + b * p.sin_stride + 8 * c);
  const bool whole_partner = half % 8 == 0;  // else (D = 8 mod 16) the partner elements straddle two words
  const uint4 partner_word = load16(row + (whole_partner ? partner % D : 0));
  const int v_begin = p.q_heads + p.kv_heads;
  const bool query = h < p.q_heads, key = !query && h < v_begin;
  const KvRows& cache = key ? p.k : p.v;
  const int64_t position = p.positions[b];
  T* const cache_head = query ? nullptr : cache.head<T>(b, key ? h - p.q_heads : h - v_begin, p.kv_heads);
  float swapped[8];  // swapped[e] = x[(e + D/2) % D] (rotate_half without its sign, which sin_rotated holds)
  if (whole_partner) {
    to_floats<T>(partner_word, swapped);
  } else {
#pragma unroll
    for (int j = 0; j < 8; ++j) swapped[j] = float(row[(partner + j) % D]);
  }
  // 3. q and k rows rotated: x * cos rounded (LibTorch's mul), then t + swapped * sin in fp32 rounded once
  //    (addcmul; the product is exact, so the fma equals LibTorch's multiply-then-add); v rows as they are.
  float x[8], cos_e[8], sin_e[8];
  to_floats<T>(own, x);
  to_floats<T>(cos_word, cos_e);
  to_floats<T>(sin_word, sin_e);
#pragma unroll
  for (int j = 0; j < 8; ++j) x[j] = fmaf(swapped[j], sin_e[j], round_to<T>(x[j] * cos_e[j]));
  // 4. Into q_out, or the k / v cache row at the sequence's position.
  T* const dst = query ? static_cast<T*>(p.q_out) + (int64_t(b) * p.q_heads + h) * D + 8 * c
                       : cache_head + position * cache.row_stride + 8 * c;
  store16(dst, h >= v_begin ? own : from_floats<T>(x));
}

// min blocks 1: with (512) alone ptxas caps registers at 40 to fit three CTAs per SM, and spills (fp16).
template <typename T>
__global__ void __launch_bounds__(kNormMaxThreads, 1) add_rms_norm_kernel(const __grid_constant__ AddRmsNormParams p) {
  __shared__ float warp_sums[kNormMaxThreads / 32];
  wait_for_prior_grids();  // x and y come from kernels before (pdl.cuh)
  allow_dependent_launch();
  const int words = p.hidden / 8;
  const T* x = static_cast<const T*>(p.x) + blockIdx.x * p.x_stride;  // [H] this row
  const T* y = static_cast<const T*>(p.y) + blockIdx.x * p.y_stride;
  T* sum_out = static_cast<T*>(p.sum_out) + int64_t(blockIdx.x) * p.hidden;
  T* normed_out = static_cast<T*>(p.normed_out) + int64_t(blockIdx.x) * p.hidden;

  // 1. This thread's words of x, y and the norm weight, loaded in one round (the weight's loads after the
  //    reduction were a second dependent round trip).
  uint4 xs[kNormWordsPerThread], ys[kNormWordsPerThread], ws[kNormWordsPerThread];
#pragma unroll
  for (int k = 0; k < kNormWordsPerThread; ++k) {
    const int c = threadIdx.x + k * blockDim.x;
    if (c < words) {
      xs[k] = load16(x + 8 * c);
      ys[k] = load16(y + 8 * c);
      ws[k] = load16(static_cast<const T*>(p.weight) + 8 * c);
    }
  }
  // 2. sum = round(x + y), written out and kept; the fp32 sum of the squares of the rounded values, in the order
  //    rms_norm_rows.cuh fixes.
  uint4 sums[kNormWordsPerThread];
  float squares = 0.f;
#pragma unroll
  for (int k = 0; k < kNormWordsPerThread; ++k) {
    const int c = threadIdx.x + k * blockDim.x;
    if (c < words) {
      sums[k] = detail::sum_word<T>(xs[k], ys[k], /*has_add=*/true, squares);
      store16(sum_out + 8 * c, sums[k]);
    }
  }
  // 3. rstd as LibTorch's fused kernel: rsqrt(sum_sq / H + eps), fp32.
  squares = detail::warp_tree_sum(squares);
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = squares;
  __syncthreads();
  const float rstd = detail::rstd_of(warp_sums, blockDim.x, p.hidden, p.eps);
  // 4. normed = round(w * (rstd * sum)).
#pragma unroll
  for (int k = 0; k < kNormWordsPerThread; ++k) {
    const int c = threadIdx.x + k * blockDim.x;
    if (c < words) store16(normed_out + 8 * c, detail::normed_word<T>(sums[k], ws[k], rstd));
  }
}

template <typename T>
__global__ void __launch_bounds__(kElementwiseThreads) silu_mul_kernel(const __grid_constant__ SiluMulParams p) {
  wait_for_prior_grids();
  allow_dependent_launch();
  const int words = p.intermediate / 8;
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= int64_t(p.rows) * words) return;
  const int c = static_cast<int>(i % words);
  const int64_t r = i / words;
  const T* gate = static_cast<const T*>(p.gate_up) + r * p.gate_up_stride + 8 * c;
  float g[8], u[8];
  to_floats<T>(load16(gate), g);
  to_floats<T>(load16(gate + p.intermediate), u);
#pragma unroll
  for (int j = 0; j < 8; ++j) g[j] = round_to<T>(g[j] / (1.f + expf(-g[j]))) * u[j];
  store16(static_cast<T*>(p.out) + r * p.intermediate + 8 * c, from_floats<T>(g));
}

// f(TypeTag<T>{}) for the element type of `dtype` (validated by the caller).
template <typename F>
Status with_type(DType dtype, F&& f) {
  return dtype == DType::kBFloat16 ? f(TypeTag<__nv_bfloat16>{}) : f(TypeTag<__half>{});
}

Status launched(cudaError_t e) { return e == cudaSuccess ? Status::kOk : Status::kCudaError; }

unsigned grid_for(int64_t threads) {
  return static_cast<unsigned>((threads + kElementwiseThreads - 1) / kElementwiseThreads);
}

}  // namespace

Status rope_append_cuda(const RopeAppendParams& p, void* stream) {
  if (!rope_append_valid(p)) return Status::kInvalidArgument;
  const int64_t threads = int64_t(p.batch) * (p.q_heads + 2 * p.kv_heads) * (p.head_dim / 8);
  if (threads == 0) return Status::kOk;
  return with_type(p.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launched(launch_dependent(kStepOpsLaunch, rope_append_kernel<T>, grid_for(threads), kElementwiseThreads, 0,
                                     static_cast<cudaStream_t>(stream), p));
  });
}

Status add_rms_norm_cuda(const AddRmsNormParams& p, void* stream) {
  if (!add_rms_norm_valid(p)) return Status::kInvalidArgument;
  if (p.rows == 0) return Status::kOk;
  // One word per thread up to H = 4096, then up to kNormWordsPerThread (hidden <= kAddRmsNormMaxHidden).
  const int threads = detail::norm_threads(p.hidden);
  return with_type(p.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launched(launch_dependent(kStepOpsLaunch, add_rms_norm_kernel<T>, p.rows, threads, 0,
                                     static_cast<cudaStream_t>(stream), p));
  });
}

Status silu_mul_cuda(const SiluMulParams& p, void* stream) {
  if (!silu_mul_valid(p)) return Status::kInvalidArgument;
  const int64_t threads = int64_t(p.rows) * (p.intermediate / 8);
  if (threads == 0) return Status::kOk;
  return with_type(p.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launched(launch_dependent(kStepOpsLaunch, silu_mul_kernel<T>, grid_for(threads), kElementwiseThreads, 0,
                                     static_cast<cudaStream_t>(stream), p));
  });
}

}  // namespace gsa::kernels
