// Private to gsa_kernels: mma_scores, one query's dots with gathered key rows on the tensor cores, for the chunk
// selection's level_select_kernel (chunk_selection.cu).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "sparse_attention_device.cuh"  // mma_16816

namespace gsa::kernels::detail {

// One head's dots with its C candidates' key rows (key_row[c] into k, -1: none) into score[c] (left as it is for
// none), by the CTA's NT / 32 warps on the tensor cores: warp w takes the tiles of 16 candidates w, w + NT / 32, ...,
// each an mma.sync m16n8k16 chain with the tile's key rows as A and the query (words: this thread's 16-byte words
// of it, elements 32 j + 8 (lane % 4) .. + 7 for j < D / 32, chunk_selection.cu's load_query_words) as every
// column of B, in skinny_gemm.cu's fragment order -- a lane's 16-byte load at element 32 j + 8 (lane % 4) of rows
// lane / 4 and lane / 4 + 8 is its A fragment of two mmas as it comes, so every column of C holds the tile's 16
// dots. A round's loads (16 of 16 bytes a lane) go out together from clamped rows before its first mma. Against
// the team dots (D / 8 lanes a row, 8 products a lane, a shuffle sum): ~25 instructions a warp for 16 candidates
// where the teams took ~120 -- the joined top level's 1,024 candidates were a quarter of level_select_kernel's
// instructions. The sums run in the tensor cores' order: the same products, fp32 accumulators.
template <typename T, int D, int NT>
__device__ __forceinline__ void mma_scores(const T* k, int64_t row_stride, const int32_t* key_row, float* score,
                                           int C, const uint4 (&words)[D / 32]) {
  constexpr int kSteps = D / 32, kWarps = NT / 32, kRoundTiles = 8 / kSteps;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, quad = lane % 4;
  const int tiles = (C + 15) / 16;
  for (int first = warp; first < tiles; first += kWarps * kRoundTiles) {
    const int n = min(kRoundTiles, (tiles - first + kWarps - 1) / kWarps);  // this warp's tiles this round
    uint4 lo[kRoundTiles][kSteps], hi[kRoundTiles][kSteps];
#pragma unroll
    for (int i = 0; i < kRoundTiles; ++i) {
      if (i == n) break;
      const int c = (first + i * kWarps) * 16 + g;
      const int64_t r_lo = c < C ? max(key_row[c], 0) : 0, r_hi = c + 8 < C ? max(key_row[c + 8], 0) : 0;
      const T* a_lo = k + r_lo * row_stride + quad * 8;
      const T* a_hi = k + r_hi * row_stride + quad * 8;
#pragma unroll
      for (int j = 0; j < kSteps; ++j) {
        lo[i][j] = __ldg(reinterpret_cast<const uint4*>(a_lo + 32 * j));
        hi[i][j] = __ldg(reinterpret_cast<const uint4*>(a_hi + 32 * j));
      }
    }
#pragma unroll
    for (int i = 0; i < kRoundTiles; ++i) {
      if (i == n) break;
      float acc[4] = {0.f, 0.f, 0.f, 0.f};  // C fragment: rows g and g + 8 (columns 2 quad, 2 quad + 1: equal)
#pragma unroll
      for (int j = 0; j < kSteps; ++j) {
        const uint32_t a0[4] = {lo[i][j].x, hi[i][j].x, lo[i][j].y, hi[i][j].y};  // k-slots of words 0-1
        const uint32_t a1[4] = {lo[i][j].z, hi[i][j].z, lo[i][j].w, hi[i][j].w};  // k-slots of words 2-3
        mma_16816<T>(acc, a0, words[j].x, words[j].y);
        mma_16816<T>(acc, a1, words[j].z, words[j].w);
      }
      const int c = (first + i * kWarps) * 16 + g + (quad == 1 ? 8 : 0);  // quad 0 writes row g, quad 1 row g + 8
      if (quad < 2 && c < C && key_row[c] >= 0) score[c] = quad == 0 ? acc[0] : acc[2];
    }
  }
}

}  // namespace gsa::kernels::detail
