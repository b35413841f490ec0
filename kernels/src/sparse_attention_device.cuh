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

constexpr float kLog2e = 1.4426950408889634f;

// 2^x by the MUFU unit alone (ex2.approx.ftz: about 2 ulp, results below 2^-126 flushed to 0; -inf -> 0): what
// exp2f compiles to under -use_fast_math. Plain exp2f adds a compare and two predicated multiplies per call to
// handle subnormal results, which in a softmax over 64-key tiles is a third of the per-score instructions.
__device__ __forceinline__ float exp2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

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
// L2 policy for data read once: evicted first, so data streaming through (the skinny GEMM's weights, stored dS tiles)
// does not push out what is reused.
__device__ __forceinline__ uint64_t evict_first_policy() {
  uint64_t policy;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(policy));
  return policy;
}
// The stored-dS layout (GSA_SM90_DQ=2): a visited pair's dS^T tile is 64 key rows of 128 bytes (64 query rows'
// bf16 / fp16 values), 16-byte chunk c of a key's row at c ^ (key % 8) (hopper.cuh's 128-byte swizzle), so the dq
// pass copies it into shared memory unchanged and reads it as an MN-major wgmma operand. Within a key's row the
// query rows are permuted so that each key-pass thread's 16 values of that key (its accumulator's query rows
// 8 j + 2 (lane % 4) + e, j = 0..7, e = 0..1, in that order) are 32 contiguous bytes: two 16-byte stores, one sector.
// Position p of a row holds query row stored_ds_query_row(p); the dq pass's accumulator row p is that query row.
__host__ __device__ constexpr int stored_ds_query_row(int position) {
  return 8 * ((position & 15) >> 1) + 2 * (position >> 4) + (position & 1);
}
// 16-byte async copy of data read once, under `policy` (evict_first_policy()).
__device__ __forceinline__ void cp_async_16_read_once(void* dst, const void* src, uint64_t policy) {
  asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "l"(policy));
}
// 4-byte async copy (always valid).
__device__ __forceinline__ void cp_async_4(void* dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(smem_addr(dst)), "l"(src));
}
// 4-byte async copy that zero-fills the destination when src_valid is false (src is not read).
__device__ __forceinline__ void cp_async_4_or_zero(void* dst, const void* src, bool src_valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(src_valid ? 4 : 0));
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

// Copies kRowsCount rows of D elements into a swizzled tile, and with kPair the same rows of a second source
// into a second tile (K and V, or Q and dO): row r comes from base + offset(r) (offset < 0: a zero row). Thread
// t always copies chunk t % (D / 8) of rows t / (D / 8) + k * (kThreadsCount / (D / 8)), a row step that is a
// multiple of 8, so the swizzle and the destination offsets are compile-time constants per thread.
template <int D, int kRowsCount, int kThreadsCount, bool kPair, typename T, typename Offset>
__device__ __forceinline__ void load_rows_async(T* tile, const T* base, T* tile2, const T* base2, Offset offset) {
  constexpr int kChunks = D / 8;
  constexpr int kRowStep = kThreadsCount / kChunks;
  static_assert(kThreadsCount % kChunks == 0 && kRowStep % 8 == 0 && kRowsCount % kRowStep == 0,
                "rows, threads and head dim do not tile");
  const int chunk = threadIdx.x % kChunks, first_row = threadIdx.x / kChunks;
#pragma unroll 2
  for (int k = 0; k < kRowsCount / kRowStep; ++k) {
    const int row = first_row + k * kRowStep;
    const int64_t off = offset(row);
    const int dst = swizzled<D>(row, chunk);
    cp_async_16(tile + dst, off >= 0 ? base + off + chunk * 8 : base, off >= 0);
    if constexpr (kPair) cp_async_16(tile2 + dst, off >= 0 ? base2 + off + chunk * 8 : base2, off >= 0);
  }
}

// acc[m][n] += A_m * b_tile^T for kM row blocks A_m = rows a_row + 16m .. +15 of the swizzled tile `a_tile`
// (16 x D each) and the kCols rows of b_tile as the product's columns (S = Q K^T, dP = dO V^T, S^T = K Q^T).
// Each B fragment is loaded once for all kM row blocks.
template <int D, int kCols, int kM, typename T>
__device__ __forceinline__ void mma_rows_times_tile_t(float (&acc)[kM][kCols / 8][4], const T* a_tile, int a_row,
                                                      const T* b_tile) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    uint32_t a[kM][4];
#pragma unroll
    for (int m = 0; m < kM; ++m) {
      ldmatrix_x4(a[m], smem_addr(a_tile + swizzled<D>(a_row + 16 * m + (lane & 15), 2 * kk + (lane >> 4))));
    }
#pragma unroll
    for (int j = 0; j < kCols / 16; ++j) {
      uint32_t b[4];
      const int row = 16 * j + (lane & 7) + ((lane >> 4) << 3);
      ldmatrix_x4(b, smem_addr(b_tile + swizzled<D>(row, 2 * kk + ((lane >> 3) & 1))));
#pragma unroll
      for (int m = 0; m < kM; ++m) {
        mma_16816<T>(acc[m][2 * j], a[m], b[0], b[1]);
        mma_16816<T>(acc[m][2 * j + 1], a[m], b[2], b[3]);
      }
    }
  }
}

// acc[m][n] (n-tiles of 8 of the D columns) += P_m * tile, P_m (16 x kInner) given as fp32 C fragments over
// kInner / 8 n-tiles (converted to A fragments), tile kInner rows x D. Each B fragment serves all kM blocks.
template <int D, int kInner, int kM, typename T>
__device__ __forceinline__ void mma_c_times_tile(float (&acc)[kM][D / 8][4], const float (&p)[kM][kInner / 8][4],
                                                 const T* tile) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int kk = 0; kk < kInner / 16; ++kk) {
    uint32_t a[kM][4];
#pragma unroll
    for (int m = 0; m < kM; ++m) {
      a[m][0] = Pack2<T>::from(p[m][2 * kk][0], p[m][2 * kk][1]);
      a[m][1] = Pack2<T>::from(p[m][2 * kk][2], p[m][2 * kk][3]);
      a[m][2] = Pack2<T>::from(p[m][2 * kk + 1][0], p[m][2 * kk + 1][1]);
      a[m][3] = Pack2<T>::from(p[m][2 * kk + 1][2], p[m][2 * kk + 1][3]);
    }
#pragma unroll
    for (int j = 0; j < D / 16; ++j) {
      uint32_t b[4];
      const int row = 16 * kk + (lane & 7) + (((lane >> 3) & 1) << 3);
      ldmatrix_x4_trans(b, smem_addr(tile + swizzled<D>(row, 2 * j + (lane >> 4))));
#pragma unroll
      for (int m = 0; m < kM; ++m) {
        mma_16816<T>(acc[m][2 * j], a[m], b[0], b[1]);
        mma_16816<T>(acc[m][2 * j + 1], a[m], b[2], b[3]);
      }
    }
  }
}

// acc[n] (n-tiles of 8 of the kCols columns col0 .. col0 + kCols - 1 of `tile`) += A * tile[:, those columns],
// A = rows a_row .. a_row + 15 of the swizzled [*, kInner] tile `a_tile` (the key pass's dS, query rows x keys),
// `tile` kInner rows x D (dQ = dS K).
template <int kInner, int D, int kCols, typename T>
__device__ __forceinline__ void mma_smem_rows_times_tile(float (&acc)[kCols / 8][4], const T* a_tile, int a_row,
                                                         const T* tile, int col0) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int kk = 0; kk < kInner / 16; ++kk) {
    uint32_t a[4];
    ldmatrix_x4(a, smem_addr(a_tile + swizzled<kInner>(a_row + (lane & 15), 2 * kk + (lane >> 4))));
#pragma unroll
    for (int j = 0; j < kCols / 16; ++j) {
      uint32_t b[4];
      const int row = 16 * kk + (lane & 7) + (((lane >> 3) & 1) << 3);
      ldmatrix_x4_trans(b, smem_addr(tile + swizzled<D>(row, col0 / 8 + 2 * j + (lane >> 4))));
      mma_16816<T>(acc[2 * j], a, b[0], b[1]);
      mma_16816<T>(acc[2 * j + 1], a, b[2], b[3]);
    }
  }
}

// Row r of a block of kRowsCount rows: the query head offset inside the group and the position. group is a
// power of two (1, 2, 4 or 8), so the split is a shift and a mask.
struct QueryRow {
  int head;  // q head = kv_head * group + head
  int pos;
};
template <int kRowsCount>
__device__ __forceinline__ QueryRow query_row(int r, int group, int start) {
  const int shift = (__ffs(kRowsCount) - 1) - (__ffs(group) - 1);  // log2(kRowsCount / group)
  return {r >> shift, start + (r & ((1 << shift) - 1))};
}

// Where query row qr of batch row b (a query head of KV head kv_head's group, and a position) lives: its element
// offset in q, d_out, out and dq (q_batch = b * q_stride[0]; -1 past the row's last query, row_end), and its index
// in lse and delta.
__device__ __forceinline__ int64_t query_row_offset(const SparseAttentionParams& p, int64_t q_batch, int kv_head,
                                                    int group, int row_end, const QueryRow& qr) {
  if (qr.pos >= row_end) return -1;
  return q_batch + int64_t(kv_head * group + qr.head) * p.q_stride[1] + int64_t(qr.pos - p.q_begin) * p.q_stride[2];
}
__device__ __forceinline__ int64_t query_stat_index(const SparseAttentionParams& p, int b, int kv_head, int group,
                                                    const QueryRow& qr) {
  return (int64_t(b) * p.q_heads + kv_head * group + qr.head) * p.num_queries + (qr.pos - p.q_begin);
}

// A query block's rows as the mask sees them, struct-of-arrays in shared memory.
template <int kRowsCount>
struct QueryMetaSmem {
  int32_t pos[kRowsCount];   // -1 for rows past the row's last query
  int32_t doc[kRowsCount];
  int32_t level[kRowsCount];
  int32_t sees_gists[kRowsCount];
  int32_t chunk[kMaxGistLevels][kRowsCount];
};

// Fills row r of the block's query metadata (r >= kRowsCount: nothing; callers pass a thread index, so that
// kRowsCount threads fill the block).
template <int kRowsCount>
__device__ __forceinline__ void load_query_meta(QueryMetaSmem<kRowsCount>& s, const SparseAttentionParams& p, int b,
                                                int start, int r) {
  if (r >= kRowsCount) return;
  const QueryRow qr = query_row<kRowsCount>(r, p.q_heads / p.kv_heads, start);
  const bool valid = qr.pos < p.row_query_end[b];
  const int32_t* m = p.token_meta + (int64_t(b) * p.num_keys + (valid ? qr.pos : 0)) * kTokenMetaInts;
  s.pos[r] = valid ? qr.pos : -1;
  s.doc[r] = valid ? m[kMetaDoc] : -1;
  s.level[r] = m[kMetaLevel];
  s.sees_gists[r] = query_sees_gists(m, p.rule);
#pragma unroll
  for (int l = 0; l < kMaxGistLevels; ++l) s.chunk[l][r] = m[kMetaChunk0 + l];
}

// Copies query tile rows' token metadata (meta: the tile's positions start .. start + kRowsCount / group - 1, 16 bytes
// a thread) and statistics (lse, delta: one per row, 0 past the row's last query, row_end) by cp.async; thread t
// of at least kRowsCount threads.
template <int kRowsCount>
__device__ __forceinline__ void load_query_tile_rows_async(int32_t* meta, float* lse, float* delta,
                                                          const SparseAttentionParams& p, int b, int kv_head,
                                                          int group, int row_end, int start, int t) {
  const int positions = kRowsCount / group;
  if (t < positions * (kTokenMetaInts / 4)) {  // 16 bytes of one position's metadata
    const int pos = start + t / (kTokenMetaInts / 4);
    const bool valid = pos < row_end;
    const int32_t* src = p.token_meta + (int64_t(b) * p.num_keys + (valid ? pos : 0)) * kTokenMetaInts;
    cp_async_16(meta + 4 * t, src + 4 * (t % (kTokenMetaInts / 4)), valid);
  }
  if (t < kRowsCount) {
    const QueryRow qr = query_row<kRowsCount>(t, group, start);
    const bool valid = qr.pos < row_end;
    const int64_t stat = valid ? query_stat_index(p, b, kv_head, group, qr) : 0;
    cp_async_4_or_zero(lse + t, p.lse + stat, valid);
    cp_async_4_or_zero(delta + t, p.delta + stat, valid);
  }
}

// Row r of a query tile of kRowsCount rows as the mask sees it against key class key_class, from the tile's token
// metadata (meta, as load_query_tile_rows_async copies it).
template <int kRowsCount>
__device__ __forceinline__ MaskQuery query_tile_mask_query(const int32_t* meta, int r, int group, int start,
                                                           int row_end, int key_class, const GistMaskRule& rule) {
  const QueryRow qr = query_row<kRowsCount>(r, group, start);
  return mask_query_of(qr.pos < row_end ? qr.pos : -1, meta + (r & (kRowsCount / group - 1)) * kTokenMetaInts,
                       key_class, rule);
}

// A key-pass thread's dK and dV into the fp32 workspaces: keys key0 and key0 + 8 of the tile (k/v row rows[key], -1:
// none), columns 8 j + 2 (lane % 4) + {0, 1}, whose values grads(h, j) gives as {dK pair, dV pair} for key
// key0 + 8 h; atomic adds when several backward items share the key tile (shared), else plain stores.
struct KeyGradientPairs {
  float2 dk, dv;
};
template <int D, typename Grads>
__device__ __forceinline__ void write_key_gradients(const SparseAttentionParams& p, const int32_t* rows, int key0,
                                                    int lane, int b, int kv_head, bool shared, Grads grads) {
  const int64_t accum_base = (int64_t(b) * p.kv_heads + kv_head) * p.kv_rows * D;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int32_t row = rows[key0 + 8 * h];
    if (row < 0) continue;
    float* dk_row = p.dk_accum + accum_base + int64_t(row) * D;
    float* dv_row = p.dv_accum + accum_base + int64_t(row) * D;
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      const int col = 8 * j + 2 * (lane & 3);
      const KeyGradientPairs g = grads(h, j);
      const float2 dk = g.dk, dv = g.dv;
      if (shared) {
        atomicAdd(dk_row + col, dk.x);
        atomicAdd(dk_row + col + 1, dk.y);
        atomicAdd(dv_row + col, dv.x);
        atomicAdd(dv_row + col + 1, dv.y);
      } else {
        *reinterpret_cast<float2*>(dk_row + col) = dk;
        *reinterpret_cast<float2*>(dv_row + col) = dv;
      }
    }
  }
}

// A key tile's keys as the mask sees them, and the k/v row of each (-1: no key, or not held: mask_key then
// reads the key's position as -1).
struct KeyMetaSmem {
  int32_t row[kTileKeys];
  int32_t pos[kTileKeys];
  int32_t doc[kTileKeys];
  int32_t chunk0[kTileKeys];
  int32_t chunk_up[kTileKeys];
};

// The k/v row of key slot c of a key tile (-1: none), straight from global memory.
__device__ __forceinline__ int32_t key_row(const SparseAttentionParams& p, int key_tile, int c) {
  const int64_t i = int64_t(key_tile) * kTileKeys + c;
  return p.key_rows != nullptr ? p.key_rows[i] : p.plan.key_tile_positions[i];
}

__device__ __forceinline__ void load_key_meta(KeyMetaSmem& s, const SparseAttentionParams& p, int key_tile) {
  const int c = threadIdx.x;
  if (c >= kTileKeys) return;
  const int64_t i = int64_t(key_tile) * kTileKeys + c;
  const int32_t pos = p.plan.key_tile_positions[i];
  const int32_t row = p.key_rows != nullptr ? p.key_rows[i] : pos;
  s.row[c] = row;
  s.pos[c] = row >= 0 ? pos : -1;
  s.doc[c] = p.plan.key_tile_doc[i];
  s.chunk0[c] = p.plan.key_tile_chunk0[i];
  s.chunk_up[c] = p.plan.key_tile_chunk_up[i];
}

template <int kRowsCount>
__device__ __forceinline__ MaskQuery mask_query(const QueryMetaSmem<kRowsCount>& s, int r, int key_class,
                                                int levels) {
  const int up = chunk_up_index(key_class, levels);
  return {s.pos[r] < 0 ? -1 : s.pos[r], s.doc[r], s.level[r], s.chunk[0][r], s.chunk[up][r], s.sees_gists[r] != 0};
}

__device__ __forceinline__ MaskKey mask_key(const KeyMetaSmem& s, int c) {
  return {s.row[c] >= 0 ? s.pos[c] : -1, s.doc[c], s.chunk0[c], s.chunk_up[c]};
}

// load_key_meta by cp.async (threads 0..79 of the CTA each copy 16 bytes of one of the five 64-entry arrays), so
// no thread waits on the plan's metadata: it lands with the caller's next cp_async_wait.
__device__ __forceinline__ void load_key_meta_async(KeyMetaSmem& s, const SparseAttentionParams& p, int key_tile) {
  constexpr int kChunksPerArray = kTileKeys / 4;  // 16 bytes = 4 int32
  const int t = threadIdx.x;
  if (t >= 5 * kChunksPerArray) return;
  const int field = t / kChunksPerArray, chunk = t % kChunksPerArray;
  const int64_t at = int64_t(key_tile) * kTileKeys + 4 * chunk;
  const int32_t* rows = p.key_rows != nullptr ? p.key_rows : p.plan.key_tile_positions;
  const int32_t* src = field == 0   ? p.plan.key_tile_positions
                       : field == 1 ? rows
                       : field == 2 ? p.plan.key_tile_doc
                       : field == 3 ? p.plan.key_tile_chunk0
                                    : p.plan.key_tile_chunk_up;
  int32_t* dst = field == 0 ? s.pos : field == 1 ? s.row : field == 2 ? s.doc : field == 3 ? s.chunk0 : s.chunk_up;
  cp_async_16(dst + 4 * chunk, src + at, true);
}

}  // namespace gsa::kernels::detail
