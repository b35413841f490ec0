// CUDA kernel of skinny_gemm.h: the weight streams through the tensor cores, mma.sync m16n8k16 with a tile of
// 16 weight rows as A and x as B (its M <= 8 rows are the 8 columns; missing rows are zeros), fp32 accumulators.
//
// Work: a warp owns one tile (kNone: weight rows 16 t .. 16 t + 15; kSiluMul: gate rows 8 t .. 8 t + 7 as A rows
// 0-7 and their up rows I + 8 t .. as A rows 8-15, so a lane ends up holding a gate sum and the up sum of the
// same (m, i); kRopeAppend: rows D h + 8 j .. + 7 of head h as A rows 0-7 and rows D h + D / 2 + 8 j .. + 7 as A
// rows 8-15, h = t / (D / 16), j = t % (D / 16), so a lane holds both elements of its RoPE pairs) over its share
// of K. Step j of the K loop covers k = 32 j .. 32 j + 31: lane (group g = lane / 4,
// quad q = lane % 4) loads the 16 bytes k = 32 j + 8 q .. + 7 of tile rows g and g + 8 and of x row g. A sum over
// k does not care which k-slot of an mma a product lands in, as long as A and B agree: the lane's words 0-1 fill
// its k-slots (2q, 2q + 8) of one mma and words 2-3 those of a second, in A and B alike, so the 16-byte loads
// are the fragments as they come (no shuffles, no shared memory). One warp-wide load reads 8 rows x 64
// contiguous bytes: whole 32-byte sectors.
// Bandwidth: a warp issues kUnroll steps' weight and x loads (2 kUnroll + kUnroll 16-byte loads a thread) before
// its first mma; weights are ld.global.nc with L1::no_allocate, an L2 evict_first policy (each is read once) and
// the L2::256B prefetch hint (the next steps read on along the same rows), x (at most 8 x K elements, read by
// every warp) goes through L1. Measured on an H200 (bf16, CUDA-graph replays over weights larger than L2): 12
// weight loads in flight at 2 CTAs an SM beat 8 at 3 by 5-17%; the 256-byte hint added 2-8% at N >= 16384.
// Split K: `split` consecutive warps of a CTA (1, 2, 4, 8 or 16) share a tile, warp s taking steps s, s + split,
// ...; they add their accumulators through shared memory in warp order (deterministic) and the first one runs the
// epilogue (bias, SiLU-mul, rounding, stores). choose_split gives small N more warps: N = 2048 (128 tiles) runs
// 128 CTAs of one tile split 16 ways (CTAs of 16 warps, one an SM: twice the loads in flight of the 8 warps an SM
// a split of 8 leaves), N = 128259 (8017 tiles) 2005 CTAs of 4 tiles split 2 ways.
// Launched to overlap the kernel before it (pdl.cuh): with weight_early each warp issues its first kUnroll steps'
// weight loads, then waits for the earlier kernels before it loads x, so a GEMM's first 12 x 16 bytes a thread
// (~100 KB an SM: all of a 2048 x 2048 weight) stream in while the kernel before it finishes.
// kRopeAppend's epilogue reads the RoPE tables, the positions and the caches' head table: the epilogue's lanes
// prefetch their entries into L1 when their K steps end, so the loads land while the split's other warps finish
// (prefetched inside the K loop they cost spills).
// No -use_fast_math: expf and the division are the full-precision functions LibTorch's silu uses.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <limits>

#include "dispatch.cuh"  // env_int
#include "gsa/kernels/skinny_gemm.h"
#include "pdl.cuh"
#include "sparse_attention_device.cuh"  // mma_16816, evict_first_policy

namespace gsa::kernels {
namespace {

using detail::evict_first_policy;
using detail::mma_16816;

// Warps of a CTA: kWarps / split tiles, 2 CTAs an SM (at most 128 registers a thread); a split of 16 runs CTAs of
// kWideWarps (one an SM, the same 128 registers).
constexpr int kWarps = 8;
constexpr int kWideWarps = 16;
constexpr int kUnroll = 6;       // K steps a warp loads before it multiplies: 12 x 16 B of weight per thread
constexpr int kWarpsPerSm = 16;  // resident warps an SM (2 CTAs): choose_split fills one wave of them
constexpr int kStepK = 32;       // k elements per step (2 mmas of k 16)


// 16 bytes of weight (not allocated in L1), or zeros where !valid (then p is not read).
__device__ __forceinline__ uint4 load_weight(const void* p, bool valid, uint64_t policy) {
  uint4 v;
  asm volatile(
      "{\n"
      "  .reg .pred p;\n"
      "  setp.ne.b32 p, %5, 0;\n"
      "  mov.b32 %0, 0;\n"
      "  mov.b32 %1, 0;\n"
      "  mov.b32 %2, 0;\n"
      "  mov.b32 %3, 0;\n"
      "  @p ld.global.nc.L1::no_allocate.L2::cache_hint.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4], %6;\n"
      "}\n"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p), "r"(static_cast<int>(valid)), "l"(policy));
  return v;
}

// 16 bytes of x through L1 (every warp reads them), or zeros where !valid. Volatile like load_weight, so the
// compiler keeps it ahead of the mmas: its latency overlaps the weights'. A coherent load with a memory clobber,
// not ld.global.nc: x is written by the kernel before, which may still run until this kernel's wait (pdl.cuh), and
// a non-coherent load may be scheduled ahead of the wait.
__device__ __forceinline__ uint4 load_x(const void* p, bool valid) {
  uint4 v;
  asm volatile(
      "{\n"
      "  .reg .pred p;\n"
      "  setp.ne.b32 p, %5, 0;\n"
      "  mov.b32 %0, 0;\n"
      "  mov.b32 %1, 0;\n"
      "  mov.b32 %2, 0;\n"
      "  mov.b32 %3, 0;\n"
      "  @p ld.global.v4.u32 {%0, %1, %2, %3}, [%4];\n"
      "}\n"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p), "r"(static_cast<int>(valid))
      : "memory");
  return v;
}

// Conversions spelled as intrinsics (builds that define __CUDA_NO_HALF_CONVERSIONS__ have no implicit ones).
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
template <typename T>
__device__ __forceinline__ T round_to_type(float v);  // round to nearest even
template <>
__device__ __forceinline__ __nv_bfloat16 round_to_type<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}
template <>
__device__ __forceinline__ __half round_to_type<__half>(float v) {
  return __float2half_rn(v);
}
// v rounded to T and read back: LibTorch's rounding of an intermediate result to the activations' dtype.
template <typename T>
__device__ __forceinline__ float rounded(float v) {
  return to_float(round_to_type<T>(v));
}

// out[m, col] = round(v), stored in the dtype or, with out_float, as the rounded value in fp32.
template <typename T>
__device__ __forceinline__ void store_out(const SkinnyGemmParams& p, int m, int64_t col, float v) {
  if (p.out_float) {
    static_cast<float*>(p.out)[m * p.out_stride + col] = rounded<T>(v);
  } else {
    static_cast<T*>(p.out)[m * p.out_stride + col] = round_to_type<T>(v);
  }
}

// round(silu(round(g))) * round(u) in fp32, ready for the final rounding (decode_step_ops' silu_mul).
template <typename T>
__device__ __forceinline__ float silu_mul_of(float g, float u) {
  g = rounded<T>(g);
  return rounded<T>(g / (1.f + expf(-g))) * rounded<T>(u);
}

template <typename T>
__device__ __forceinline__ float bias_of(const SkinnyGemmParams& p, int64_t row) {
  return p.bias == nullptr ? 0.f : to_float(static_cast<const T*>(p.bias)[row]);
}

__device__ __forceinline__ void prefetch_l1(const void* p) { asm volatile("prefetch.global.L1 [%0];" ::"l"(p)); }

// kRopeAppend: the cache a k or v head (head >= Hq) goes to, and its KV head index there.
__device__ __forceinline__ const KvRows& head_cache(const SkinnyRopeAppend& r, int head, int& kv) {
  const bool key = head < r.q_heads + r.kv_heads;
  kv = head - (key ? r.q_heads : r.q_heads + r.kv_heads);
  return key ? r.k : r.v;
}

// kRopeAppend: head h's dims (d_lo, d_lo + D / 2) for activation rows m = 2q, 2q + 1 into L1 ahead of the epilogue.
template <typename T>
__device__ __forceinline__ void prefetch_rope(const SkinnyGemmParams& p, int head, int d_lo, int q) {
  const SkinnyRopeAppend& r = p.rope;
  const int d_hi = d_lo + r.head_dim / 2, hq = r.q_heads, hkv = r.kv_heads;
#pragma unroll
  for (int e = 0; e < 2; ++e) {
    const int m = 2 * q + e;
    if (m >= p.m || head >= hq + 2 * hkv) continue;
    if (head < hq + hkv) {
      const T* cos = static_cast<const T*>(r.cos) + m * r.cos_stride;
      const T* sin = static_cast<const T*>(r.sin_rotated) + m * r.sin_stride;
      prefetch_l1(cos + d_lo);
      prefetch_l1(cos + d_hi);
      prefetch_l1(sin + d_lo);
      prefetch_l1(sin + d_hi);
    }
    if (head >= hq && r.positions != nullptr) {
      prefetch_l1(r.positions + m);
      int kv;
      const KvRows& cache = head_cache(r, head, kv);
      if (cache.heads != nullptr) prefetch_l1(cache.heads + int64_t(m) * hkv + kv);
    }
  }
}

// kRopeAppend's epilogue for activation row m: qkv = round(acc + bias) of head h's dims d_lo and d_hi = d_lo + D / 2,
// rotated (q and k heads: rope_append's formula) into out (q heads) or cache rows (k heads; v heads as they are).
template <typename T>
__device__ __forceinline__ void store_rope(const SkinnyGemmParams& p, int m, int head, int d_lo, float acc_lo,
                                           float acc_hi) {
  const SkinnyRopeAppend& r = p.rope;
  const int D = r.head_dim, d_hi = d_lo + D / 2, hq = r.q_heads, hkv = r.kv_heads;
  const int64_t row_lo = int64_t(head) * D + d_lo, row_hi = row_lo + D / 2;  // the weight rows
  float x_lo = rounded<T>(acc_lo + bias_of<T>(p, row_lo)), x_hi = rounded<T>(acc_hi + bias_of<T>(p, row_hi));
  if (head < hq + hkv) {  // round(x * cos) + swapped * sin_rotated, rounded once (the product is exact in fp32)
    const T* cos = static_cast<const T*>(r.cos) + m * r.cos_stride;
    const T* sin = static_cast<const T*>(r.sin_rotated) + m * r.sin_stride;
    const float lo = fmaf(x_hi, to_float(sin[d_lo]), rounded<T>(x_lo * to_float(cos[d_lo])));
    const float hi = fmaf(x_lo, to_float(sin[d_hi]), rounded<T>(x_hi * to_float(cos[d_hi])));
    x_lo = lo;
    x_hi = hi;
  }
  T* dst;
  if (head < hq) {
    dst = static_cast<T*>(p.out) + m * p.out_stride + int64_t(head) * D;
  } else if (r.positions != nullptr) {  // row positions[m] of the head's cache
    int kv;
    const KvRows& cache = head_cache(r, head, kv);
    dst = cache.head<T>(m, kv, hkv) + r.positions[m] * cache.row_stride;
  } else {
    return;  // k and v are not stored
  }
  dst[d_lo] = round_to_type<T>(x_lo);
  dst[d_hi] = round_to_type<T>(x_hi);
}

// W warps a CTA (kWarps or kWideWarps).
template <typename T, int W, SkinnyEpilogue kEpilogue>
__global__ void __launch_bounds__(32 * W, kWarpsPerSm / W)
    skinny_gemm_kernel(const __grid_constant__ SkinnyGemmParams p, int split) {
  constexpr bool kSiluMul = kEpilogue == SkinnyEpilogue::kSiluMul, kRope = kEpilogue == SkinnyEpilogue::kRopeAppend;
  __shared__ float4 partial[W][32];  // [warp, lane]: the split-K warps' accumulators
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, q = lane % 4;
  const int s = warp % split;  // this warp's share of K
  const int64_t tile = int64_t(blockIdx.x) * (W / split) + warp / split;

  // 1. This lane's two weight rows (A rows g and g + 8) and x row (B column g); missing ones read as zeros.
  int64_t row_lo, row_hi;
  int head = 0, d_lo = 0;  // kRopeAppend: the tile's head, this lane's first dim of it
  bool lo_ok, hi_ok;
  if constexpr (kSiluMul) {
    const int64_t half = p.n / 2;
    row_lo = tile * 8 + g;   // gate row i
    row_hi = half + row_lo;  // up row I + i
    lo_ok = hi_ok = row_lo < half;
  } else if constexpr (kRope) {
    const int chunks = p.rope.head_dim / 16;
    head = static_cast<int>(tile / chunks);  // past the last head: no rows (lo_ok false)
    d_lo = 8 * static_cast<int>(tile % chunks) + g;
    row_lo = int64_t(head) * p.rope.head_dim + d_lo;  // dim d_lo of the head
    row_hi = row_lo + p.rope.head_dim / 2;    // its RoPE partner
    lo_ok = hi_ok = row_lo < p.n;
  } else {
    row_lo = tile * 16 + g;
    row_hi = row_lo + 8;
    lo_ok = row_lo < p.n;
    hi_ok = row_hi < p.n;
  }
  const T* weight = static_cast<const T*>(p.weight);
  const T* w_lo = weight + (lo_ok ? row_lo : 0) * p.weight_stride + 8 * q;  // [K] row g, from this lane's k
  const T* w_hi = weight + (hi_ok ? row_hi : 0) * p.weight_stride + 8 * q;
  const bool x_ok = g < p.m;
  const T* x = static_cast<const T*>(p.x) + (x_ok ? g : 0) * p.x_stride + 8 * q;  // [K] row g

  // 2. The warp's steps, kUnroll at a time: every weight and x load issued, then the mmas, alternating between two
  //    accumulators so that consecutive mmas do not wait for each other.
  const uint64_t policy = evict_first_policy();
  const int steps = (p.k + kStepK - 1) / kStepK;
  float acc[2][4] = {};  // C fragments: (row g, m 2q, 2q + 1), (row g + 8, same m)
  bool waited = !p.weight_early;  // for the earlier kernels (pdl.cuh): before the first x load, by every thread
  if (waited) {
    detail::wait_for_prior_grids();
    detail::allow_dependent_launch();
  }
  for (int j = s; j < steps; j += kUnroll * split) {
    uint4 lo[kUnroll], hi[kUnroll], b[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int k = (j + u * split) * kStepK;
      const bool in = k + 8 * q < p.k;
      lo[u] = load_weight(w_lo + k, in && lo_ok, policy);
      hi[u] = load_weight(w_hi + k, in && hi_ok, policy);
    }
    if (!waited) {
      detail::wait_for_prior_grids();
      detail::allow_dependent_launch();
      waited = true;
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int k = (j + u * split) * kStepK;
      const bool in = k + 8 * q < p.k && x_ok;
      b[u] = load_x(x + k, in);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const uint32_t a0[4] = {lo[u].x, hi[u].x, lo[u].y, hi[u].y};  // k-slots of words 0-1
      const uint32_t a1[4] = {lo[u].z, hi[u].z, lo[u].w, hi[u].w};  // k-slots of words 2-3
      mma_16816<T>(acc[u % 2], a0, b[u].x, b[u].y);
      mma_16816<T>(acc[u % 2], a1, b[u].z, b[u].w);
    }
  }
  if (!waited) {  // a warp without steps
    detail::wait_for_prior_grids();
    detail::allow_dependent_launch();
  }
  if constexpr (kRope) {
    if (s == 0) prefetch_rope<T>(p, head, d_lo, q);  // lands while the split's other warps finish
  }
  float c[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) c[i] = acc[0][i] + acc[1][i];

  // 3. Split K: the tile's first warp adds the others' accumulators, in warp order.
  if (split > 1) {
    partial[warp][lane] = make_float4(c[0], c[1], c[2], c[3]);
    __syncthreads();
    if (s != 0) return;
    for (int o = 1; o < split; ++o) {
      const float4 v = partial[warp + o][lane];
      c[0] += v.x;
      c[1] += v.y;
      c[2] += v.z;
      c[3] += v.w;
    }
  }

  // 4. Epilogue: lane (g, q) holds rows row_lo and row_hi for activation rows m = 2q and 2q + 1.
#pragma unroll
  for (int e = 0; e < 2; ++e) {
    const int m = 2 * q + e;
    if (m >= p.m) continue;
    if constexpr (kSiluMul) {
      if (lo_ok) {
        store_out<T>(p, m, row_lo, silu_mul_of<T>(c[e] + bias_of<T>(p, row_lo), c[2 + e] + bias_of<T>(p, row_hi)));
      }
    } else if constexpr (kRope) {
      if (lo_ok) store_rope<T>(p, m, head, d_lo, c[e], c[2 + e]);
    } else {
      if (lo_ok) store_out<T>(p, m, row_lo, c[e] + bias_of<T>(p, row_lo));
      if (hi_ok) store_out<T>(p, m, row_hi, c[2 + e] + bias_of<T>(p, row_hi));
    }
  }
}

// Warps per tile: 2 where K allows (two warps streaming the halves of the same rows measured 2-4% faster than
// one or four at N = 16384 and 128256, K = 2048 on an H200), doubled up to kWarps while the grid's warps still
// fit one wave of kWarpsPerSm an SM; every warp keeps at least kUnroll steps. Then 16 (a CTA of kWideWarps a
// tile) where the tiles fit one CTA an SM and every warp keeps at least kMinWideSteps steps (K >= 2048): the
// 2048-row projections of a 1B Llama (o_proj, down_proj), whose split of 8 leaves half of each SM's warp slots
// empty: a decode step 0.05 ms faster on an H200 (1.58 vs 1.63 ms at 128K; with programmatic launch off, 7.9 vs
// 8.5 us a call: most of the gain is the wide CTA's weight loads issued before its wait). GSA_SKINNY_WIDE=0 (read
// once) stops at 8: an A/B switch.
constexpr int kMinWideSteps = 4;
int choose_split(int64_t tiles, int k, int sms) {
  static const bool wide = detail::env_int("GSA_SKINNY_WIDE", 1) != 0;
  const int steps = (k + kStepK - 1) / kStepK;
  auto can_double = [&](int split) { return split < kWarps && steps >= 2 * split * kUnroll; };
  int split = can_double(1) ? 2 : 1;
  while (can_double(split) && tiles * split * 2 <= int64_t(sms) * kWarpsPerSm) split *= 2;
  if (wide && split == kWarps && tiles <= sms && steps >= kWideWarps * kMinWideSteps) split = kWideWarps;
  return split;
}

template <typename T, int W, SkinnyEpilogue kEpilogue>
Status launch(const SkinnyGemmParams& p, int split, unsigned ctas, cudaStream_t stream) {
  const cudaError_t e = detail::launch_dependent(detail::kGemmLaunch, skinny_gemm_kernel<T, W, kEpilogue>, ctas,
                                                 32 * W, 0, stream, p, split);
  return e == cudaSuccess ? Status::kOk : Status::kCudaError;
}

template <typename T, int W>
Status launch(const SkinnyGemmParams& p, int split, unsigned ctas, cudaStream_t stream) {
  switch (p.epilogue) {
    case SkinnyEpilogue::kSiluMul:
      return launch<T, W, SkinnyEpilogue::kSiluMul>(p, split, ctas, stream);
    case SkinnyEpilogue::kRopeAppend:
      return launch<T, W, SkinnyEpilogue::kRopeAppend>(p, split, ctas, stream);
    default:
      return launch<T, W, SkinnyEpilogue::kNone>(p, split, ctas, stream);
  }
}

// Warps of the CTAs that run a split: kWideWarps for a split of 16, else kWarps.
constexpr int cta_warps(int split) { return split == kWideWarps ? kWideWarps : kWarps; }

template <typename T>
Status launch(const SkinnyGemmParams& p, int split, unsigned ctas, cudaStream_t stream) {
  if (cta_warps(split) == kWideWarps) return launch<T, kWideWarps>(p, split, ctas, stream);
  return launch<T, kWarps>(p, split, ctas, stream);
}

}  // namespace

Status skinny_gemm_cuda(const SkinnyGemmParams& p, void* stream) {
  if (!skinny_gemm_valid(p)) return Status::kInvalidArgument;
  if (p.m == 0) return Status::kOk;
  // 1. Tiles (16 weight rows, or 8 gate rows and their up rows) and warps per tile.
  const int64_t tiles = p.epilogue == SkinnyEpilogue::kSiluMul ? (p.n / 2 + 7) / 8 : (p.n + 15) / 16;
  int split = p.split_k;
  if (split == 0) {
    int device = 0, sms = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
      return Status::kCudaError;
    }
    split = choose_split(tiles, p.k, sms);
  }
  const int64_t tiles_per_cta = cta_warps(split) / split, ctas = (tiles + tiles_per_cta - 1) / tiles_per_cta;
  if (ctas > std::numeric_limits<int32_t>::max()) return Status::kInvalidArgument;
  // 2. Launch.
  const auto s = static_cast<cudaStream_t>(stream);
  const auto grid = static_cast<unsigned>(ctas);
  return p.dtype == DType::kBFloat16 ? launch<__nv_bfloat16>(p, split, grid, s) : launch<__half>(p, split, grid, s);
}

}  // namespace gsa::kernels
