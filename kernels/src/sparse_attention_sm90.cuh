// Private to gsa_kernels: what the Hopper (sm_90a) block-sparse attention kernels share on top of hopper.cuh and
// sparse_attention_device.cuh: the dynamic shared memory's aligned base, the producer warpgroups' gather of rows
// into 128-byte-swizzled operand tiles, and a warpgroup's two kinds of products with a 64-row tile.
#pragma once

#include <cstdint>

#include "hopper.cuh"
#include "sparse_attention_device.cuh"

namespace gsa::kernels::detail {

// The dynamic shared memory's base rounded up to 1 KiB, where swizzled tiles must start (the swizzle is on address
// bits); launches ask for 1 KiB more than they use.
__device__ __forceinline__ unsigned char* aligned_dynamic_smem() {
  extern __shared__ unsigned char smem_raw[];
  return smem_raw + ((1024 - (smem_addr(smem_raw) & 1023)) & 1023);
}

// acc (m64 x 64, hopper.cuh layout) = A B^T over D: A = 64 rows of a swizzled tile of kARows rows at a_addr (the
// warpgroup's rows), B = a swizzled tile of 64 rows (kTileKeys) at b_addr, both K-major, D / 16 wgmma k-steps of
// 32 bytes of every row of a 64-column block; the first k-step overwrites acc. Issued, not committed.
template <typename T, int D, int kARows>
__device__ __forceinline__ void wgmma_rows_times_tile_t(float (&acc)[32], uint32_t a_addr, uint32_t b_addr) {
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    const uint32_t a_column = (kk / 4) * 1024 * (kARows / 8) + (kk % 4) * 32;
    const uint32_t b_column = (kk / 4) * 1024 * (kTileKeys / 8) + (kk % 4) * 32;
    wgmma_ss<T, kTileKeys>(acc, k_major_desc(a_addr + a_column), k_major_desc(b_addr + b_column), kk > 0);
  }
}

// acc (m64 x D, hopper.cuh layout) += A B: A = m64 x 64 from registers (a[kk] for k-step kk = rows 16 kk ..
// 16 kk + 15 of B), B = a swizzled tile of 64 rows (kTileKeys) x D at b_addr as the MN-major operand. Issued, not
// committed.
template <typename T, int D>
__device__ __forceinline__ void wgmma_regs_times_tile(float (&acc)[D / 2], const uint32_t (&a)[kTileKeys / 16][4],
                                                      uint32_t b_addr) {
#pragma unroll
  for (int kk = 0; kk < kTileKeys / 16; ++kk) {
    wgmma_rs<T, D>(acc, a[kk], mn_major_desc(b_addr + kk * 16 * 128, 1024 * (kTileKeys / 8)), 1);
  }
}

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
