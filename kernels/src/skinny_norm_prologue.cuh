// Private to skinny_gemm.cu: the RMSNorm prologue of the skinny GEMM (skinny_gemm.h's SkinnyNorm). Every CTA
// norms the M <= 8 activation rows itself into shared memory, where the GEMM's K loop then reads its x fragments:
//   1. copy_norm_weight: the norm weight (a parameter) into shared memory by cp.async; with weight_early it is
//      issued before the kernel waits for its predecessor, like the first weight tiles (pdl.cuh);
//   2. norm_rows, after the wait: x and add rows into shared memory by cp.async (one round trip whatever M);
//      sum = round(x + add) in place, its squares chained in the order of add_rms_norm_kernel's threads
//      (rms_norm_rows.cuh: the CTA's R threads play the M x V "threads" of M add_rms_norm CTAs, V =
//      norm_threads(K), a warp of them at a time); CTA 0 writes sum to sum_out; each virtual warp's xor-shuffle
//      tree, its sum into shared memory, the second tree of row r by warp r; normed = round(w * (rstd * sum)) in
//      place. Three barriers; the loops stay rolled (M is a runtime value), so the code stays small.
// rstd, sum and the normed rows are therefore bit for bit add_rms_norm_cuda's. Shared memory (dynamic, bytes,
// skinny_norm_smem_bytes): rows [M][K + kSkinnyNormPad] T | adds [M][K + kSkinnyNormPad] T (with add) | w [K] T.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "gsa/kernels/skinny_gemm.h"
#include "rms_norm_rows.cuh"
#include "sparse_attention_device.cuh"  // cp_async_16

namespace gsa::kernels::detail {

// Virtual warps of add_rms_norm's CTA at most (its warp sums).
constexpr int kNormMaxWarps = kNormMaxThreads / 32;

// The staged rows of the prologue in a CTA's dynamic shared memory.
template <typename T>
struct NormStage {
  T* rows;     // [M][ld]: x, then sum, then the normed rows
  T* adds;     // [M][ld]: add (with norm.add)
  T* weight;   // [K]
  int ld;      // K + kSkinnyNormPad

  __device__ NormStage(void* smem, const SkinnyGemmParams& p) : ld(p.k + kSkinnyNormPad) {
    rows = static_cast<T*>(smem);
    adds = rows + p.m * ld;
    weight = adds + (p.norm.add != nullptr ? p.m * ld : 0);
  }
};

// The prologue's reductions in shared memory: per row, the virtual warps' sums of squares and rstd.
struct NormSums {
  float warp_sums[kSkinnyGemmMaxRows][kNormMaxWarps];
  float rstd[kSkinnyGemmMaxRows];
};

// Issues the cp.async copies of the norm weight into stage.weight (one commit group).
template <typename T, int R>
__device__ __forceinline__ void copy_norm_weight(const SkinnyGemmParams& p, const NormStage<T>& stage) {
  const T* w = static_cast<const T*>(p.norm.weight);
  for (int c = threadIdx.x; c < p.k / 8; c += R) cp_async_16(stage.weight + 8 * c, w + 8 * c, true);
  cp_async_commit();
}

// stage.rows <- the normed rows (copy_norm_weight issued before). Every thread of the CTA (R = blockDim.x) calls
// it once, after the wait for the kernels before; it ends with a barrier, so any thread may then read any row.
template <typename T, int R>
__device__ void norm_rows(const SkinnyGemmParams& p, const NormStage<T>& stage, NormSums& sums) {
  static_assert(R % 32 == 0 && R / 32 >= kSkinnyGemmMaxRows, "whole warps, one a row for its rstd");
  float(&warp_sums)[kSkinnyGemmMaxRows][kNormMaxWarps] = sums.warp_sums;
  float(&rstds)[kSkinnyGemmMaxRows] = sums.rstd;
  const int m = p.m, words = p.k / 8, ld = stage.ld;
  const bool has_add = p.norm.add != nullptr;

  // 1. x and add rows into shared memory; with the weight's group, one wait.
  const T* x = static_cast<const T*>(p.x);
  const T* add = static_cast<const T*>(p.norm.add);
  for (int i = threadIdx.x; i < m * words; i += R) {
    const int r = i / words, c = i % words;
    cp_async_16(stage.rows + r * ld + 8 * c, x + r * p.x_stride + 8 * c, true);
    if (has_add) cp_async_16(stage.adds + r * ld + 8 * c, add + r * p.norm.add_stride + 8 * c, true);
  }
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();

  // 2. Work items (row r, virtual thread v), a warp's 32 items in one row and one virtual warp (V is a multiple
  //    of 32): sum in place (and to sum_out from CTA 0), v's chain of squares over words v, v + V, ..., the warp's
  //    tree, its sum into warp_sums.
  const int V = norm_threads(p.k), lane = threadIdx.x % 32;
  T* sum_out = static_cast<T*>(p.norm.sum_out);
  const bool write_sum = sum_out != nullptr && blockIdx.x == 0;
  for (int item = threadIdx.x; item < m * V; item += R) {
    const int r = item / V, v = item % V;
    float squares = 0.f;
    for (int c = v; c < words; c += V) {
      T* at = stage.rows + r * ld + 8 * c;
      const uint4 add_word = has_add ? load16(stage.adds + r * ld + 8 * c) : make_uint4(0, 0, 0, 0);
      const uint4 s = sum_word<T>(load16(at), add_word, has_add, squares);
      store16(at, s);
      if (write_sum) store16(sum_out + int64_t(r) * p.k + 8 * c, s);
    }
    squares = warp_tree_sum(squares);
    if (lane == 0) warp_sums[r][v / 32] = squares;
  }
  __syncthreads();

  // 3. rstd of row r by warp r (the second tree).
  const int warp = threadIdx.x / 32;
  if (warp < m) {
    const float rstd = rstd_of(warp_sums[warp], V, p.k, p.norm.eps);
    if (lane == 0) rstds[warp] = rstd;
  }
  __syncthreads();

  // 4. normed = round(w * (rstd * sum)) in place.
  for (int item = threadIdx.x; item < m * words; item += R) {
    const int r = item / words, c = item % words;
    T* at = stage.rows + r * ld + 8 * c;
    store16(at, normed_word<T>(load16(at), load16(stage.weight + 8 * c), rstds[r]));
  }
  __syncthreads();
}

}  // namespace gsa::kernels::detail
