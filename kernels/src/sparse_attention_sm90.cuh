// Private to gsa_kernels: what the Hopper (sm_90a) block-sparse attention kernels share on top of hopper.cuh and
// sparse_attention_device.cuh: the producer warpgroups' gather of rows into 128-byte-swizzled operand tiles.
#pragma once

#include <cstdint>

#include "hopper.cuh"
#include "sparse_attention_device.cuh"

namespace gsa::kernels::detail {

// Copies kRows rows of D 16-bit elements into rows first_tile_row .. + kRows - 1 of a 128-byte-swizzled tile of
// kTileRowsTotal rows: thread t (of kThreadsCount) copies chunk t % (D / 8) of rows t / (D / 8) +
// k * (kThreadsCount / (D / 8)), k = 0, 1, ...: src_row(k, row) is the element offset of that row in base, < 0 to
// zero-fill it.
template <int D, int kRows, int kTileRowsTotal, int kThreadsCount, typename T, typename SrcRow>
__device__ __forceinline__ void gather_rows_swizzled(unsigned char* tile, int first_tile_row, const T* base, int t,
                                                     SrcRow src_row) {
  constexpr int kChunks = D / 8, kRowStep = kThreadsCount / kChunks;
  static_assert(kThreadsCount % kChunks == 0 && kRows % kRowStep == 0, "rows, threads and head dim do not tile");
  const int chunk = t % kChunks, first_row = t / kChunks;
#pragma unroll
  for (int k = 0; k < kRows / kRowStep; ++k) {
    const int row = first_row + k * kRowStep;
    const int64_t off = src_row(k, row);
    cp_async_16(tile + swizzle128_offset(kTileRowsTotal, first_tile_row + row, chunk),
                off >= 0 ? base + off + chunk * 8 : base, off >= 0);
  }
}

}  // namespace gsa::kernels::detail
