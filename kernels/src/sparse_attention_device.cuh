// Private to gsa_kernels: the device building blocks of the block-sparse GSA attention kernels (tensor-core
// mma.sync m16n8k16 with fp32 accumulation, ldmatrix fragment loads, cp.async tile copies into XOR-swizzled
// shared memory, and the per-element mask).
//
// Fragment layouts (PTX ISA, mma.m16n8k16, lane = 4 * group + quad):
//   A 16x16 (row-major): a0 (row group, cols 2quad..+1), a1 (row group+8, same cols), a2 (row group, cols +8),
//                        a3 (row group+8, cols +8)
//   B 16x8  (k x n):     b0 (k 2quad..+1, col group), b1 (k 2quad+8..+9, col group)
//   C 16x8  (fp32):      c0, c1 (row group, cols 2quad..+1), c2, c3 (row group+8, same cols)
// Shared-memory tiles hold rows of D elements; 16-byte chunk c of row r lives at chunk c ^ (r & 7), so the 8
// rows one ldmatrix phase reads fall in 8 different bank groups.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "gsa/kernels/sparse_attention.h"

namespace gsa::kernels::detail {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr float kLog2e = 1.4426950408889634f;

template <typename T>
struct Pack2;
template <>
struct Pack2<__nv_bfloat16> {
  __device__ static uint32_t from(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
};
template <>
struct Pack2<__half> {
  __device__ static uint32_t from(float lo, float hi) {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
};

template <typename T>
__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);

template <>
__device__ __forceinline__ void mma_16816<__nv_bfloat16>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                                         uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

template <>
__device__ __forceinline__ void mma_16816<__half>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// 16-byte async copy; src_valid == false zero-fills the destination (src is not read).
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, bool src_valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(src_valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

// Element offset of 16-byte chunk `chunk` of row `row` in a swizzled [rows, D] tile.
template <int D>
__device__ __forceinline__ int swizzled(int row, int chunk) {
  return row * D + ((chunk ^ (row & 7)) << 3);
}

// Copies rows of D elements into a swizzled tile: row r comes from base + offset(r) (offset < 0: zero row).
// `offset` is a callable int -> int64 element offset.
template <int D, int kRowsCount, typename T, typename Offset>
__device__ __forceinline__ void load_rows_async(T* tile, const T* base, Offset offset) {
  constexpr int kChunks = D / 8;
  for (int i = threadIdx.x; i < kRowsCount * kChunks; i += kThreads) {
    const int row = i / kChunks, chunk = i % kChunks;
    const int64_t off = offset(row);
    const T* src = off >= 0 ? base + off + chunk * 8 : base;
    cp_async_16(tile + swizzled<D>(row, chunk), src, off >= 0);
  }
}

// acc[n] (n-tiles of 8 columns over rows 0..kCols-1 of `b_tile`) += A * b_tile^T, where A is rows
// a_row..a_row+15 of the swizzled tile `a_tile` (16 x D): the rows of b_tile are the product's columns
// (S = Q K^T with K rows as keys; dP = dO V^T; S^T = K Q^T).
template <int D, int kCols, typename T>
__device__ __forceinline__ void mma_rows_times_tile_t(float (&acc)[kCols / 8][4], const T* a_tile, int a_row,
                                                      const T* b_tile) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    uint32_t a[4];
    ldmatrix_x4(a, smem_addr(a_tile + swizzled<D>(a_row + (lane & 15), 2 * kk + (lane >> 4))));
#pragma unroll
    for (int j = 0; j < kCols / 16; ++j) {
      uint32_t b[4];
      const int row = 16 * j + (lane & 7) + ((lane >> 4) << 3);
      ldmatrix_x4(b, smem_addr(b_tile + swizzled<D>(row, 2 * kk + ((lane >> 3) & 1))));
      mma_16816<T>(acc[2 * j], a, b[0], b[1]);
      mma_16816<T>(acc[2 * j + 1], a, b[2], b[3]);
    }
  }
}

// acc[n] (n-tiles of 8 of the D columns) += P (16 x kInner, given as fp32 C fragments over kInner / 8 n-tiles,
// converted to A fragments) * tile (kInner rows x D).
template <int D, int kInner, typename T>
__device__ __forceinline__ void mma_c_times_tile(float (&acc)[D / 8][4], const float (&p)[kInner / 8][4],
                                                 const T* tile) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int kk = 0; kk < kInner / 16; ++kk) {
    uint32_t a[4];
    a[0] = Pack2<T>::from(p[2 * kk][0], p[2 * kk][1]);
    a[1] = Pack2<T>::from(p[2 * kk][2], p[2 * kk][3]);
    a[2] = Pack2<T>::from(p[2 * kk + 1][0], p[2 * kk + 1][1]);
    a[3] = Pack2<T>::from(p[2 * kk + 1][2], p[2 * kk + 1][3]);
#pragma unroll
    for (int j = 0; j < D / 16; ++j) {
      uint32_t b[4];
      const int row = 16 * kk + (lane & 7) + (((lane >> 3) & 1) << 3);
      ldmatrix_x4_trans(b, smem_addr(tile + swizzled<D>(row, 2 * j + (lane >> 4))));
      mma_16816<T>(acc[2 * j], a, b[0], b[1]);
      mma_16816<T>(acc[2 * j + 1], a, b[2], b[3]);
    }
  }
}

// Row r of a query tile: the query head offset inside the group and the position.
struct QueryRow {
  int head;  // q head = kv_head * group + head
  int pos;
};
__device__ __forceinline__ QueryRow query_row(int r, int group, int start) {
  const int per_head = kTileRows / group;
  return {r / per_head, start + r % per_head};
}

// Loads a query tile's per-row metadata (threads 0..kTileRows-1): positions (-1 for rows past the row's end)
// and the kTokenMetaInts ints (doc -1 for such rows).
__device__ __forceinline__ void load_query_meta(int32_t* s_pos, int32_t* s_meta, const SparseAttentionParams& p,
                                                int b, int start) {
  const int r = threadIdx.x;
  if (r >= kTileRows) return;
  const QueryRow qr = query_row(r, p.q_heads / p.kv_heads, start);
  const bool valid = qr.pos < p.row_query_end[b];
  s_pos[r] = valid ? qr.pos : -1;
  const int32_t* src = p.token_meta + (int64_t(b) * p.num_keys + (valid ? qr.pos : 0)) * kTokenMetaInts;
#pragma unroll
  for (int f = 0; f < kTokenMetaInts; ++f) s_meta[r * kTokenMetaInts + f] = valid ? src[f] : (f == kMetaDoc ? -1 : 0);
}

// Loads a key tile's positions and metadata (threads 0..kTileKeys-1) with plain loads.
__device__ __forceinline__ void load_key_meta(int32_t* s_pos, int32_t* s_meta, const SparseAttentionParams& p, int b,
                                              int key_tile) {
  const int c = threadIdx.x;
  if (c >= kTileKeys) return;
  const int32_t pos = p.plan.key_tile_positions[int64_t(key_tile) * kTileKeys + c];
  s_pos[c] = pos;
  const int32_t* src = p.token_meta + (int64_t(b) * p.num_keys + (pos >= 0 ? pos : 0)) * kTokenMetaInts;
#pragma unroll
  for (int f = 0; f < kTokenMetaInts; ++f) s_meta[c * kTokenMetaInts + f] = pos >= 0 ? src[f] : (f == kMetaDoc ? -1 : 0);
}

__device__ __forceinline__ bool allowed_at(const int32_t* q_pos, const int32_t* q_meta, int r, const int32_t* k_pos,
                                           const int32_t* k_meta, int c, const GistMaskRule& rule) {
  const int32_t qp = q_pos[r];
  return qp >= 0 && gist_mask_allows(qp, q_meta + r * kTokenMetaInts, k_pos[c], k_meta + c * kTokenMetaInts, rule);
}

}  // namespace gsa::kernels::detail
