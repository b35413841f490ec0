// Private to gsa_kernels: the query-block kernels on Hopper (sm_90a), the forward
// (sparse_attention_forward_sm90.cu) and the backward's dq pass (sparse_attention_dq_sm90.cu), share this (the
// stored-dS dq pass, sparse_attention_dq_ds_sm90.cu, its rows and their write-out): one
// CTA per (query block of kBlockRows rows, KV head) in three warpgroups, a producer that gathers the block's key
// tiles (K, V, mask metadata) into kKeyStages shared-memory stages handed over by mbarriers, and two consumers of
// 64 query rows each. Here: the CTA's shape, its shared memory, the producer, the consumers' prologue (their
// Q and dO rows and the block's token metadata), the rows' write-out, the kernel body (run_query_block) and the
// mask as bits.
#pragma once

#include <cstdint>

#include "sparse_attention_sm90.cuh"

namespace gsa::kernels::detail {

constexpr int kKeyStages = 4;
constexpr int kWarpgroupThreads = 128;
constexpr int kConsumers = kBlockRows / 64;  // consumer warpgroups: 64 query rows each
constexpr int kConsumerThreads = kConsumers * kWarpgroupThreads;
constexpr int kQueryBlockThreads = kWarpgroupThreads + kConsumerThreads;
constexpr int kConsumerBarrier = 1;  // named barrier among the consumer warpgroups
constexpr int kTurnBarrier = 2;      // 2 + w: consumer warpgroup w may issue its wgmmas (ping-pong schedules)
// setmaxnreg: 128 x 56 + 256 x 224 = 384 x 168, the launch's share.
constexpr int kProducerRegisters = 56, kConsumerRegisters = 224;

// Everything in shared memory besides the operand tiles.
struct QueryBlockControl {
  uint64_t full[kKeyStages];   // completes when a stage's copies have landed (kWarpgroupThreads arrivals)
  uint64_t empty[kKeyStages];  // completes when every consumer thread is done with a stage
  int32_t entry[kKeyStages];   // the stage's list entry (key tile id | kFullTile)
  int32_t key_class[kKeyStages];
  KeyMetaSmem key_meta[kKeyStages];
  QueryMetaSmem<kBlockRows> query_meta;
};

// Byte offsets from the 1 KiB-aligned base: Q (and dO for the dq pass), K and V stages, control.
template <int D, bool kWithDo>
struct QueryBlockSmem {
  static constexpr int kStageBytes = kTileKeys * D * 2;  // one K or V stage
  static constexpr int kRowsBytes = kBlockRows * D * 2;  // the block's Q (or dO) rows
  static constexpr int kQ = 0;
  static constexpr int kDo = kQ + kRowsBytes;
  static constexpr int kK = kDo + (kWithDo ? kRowsBytes : 0);
  static constexpr int kV = kK + kKeyStages * kStageBytes;
  static constexpr int kControl = kV + kKeyStages * kStageBytes;
  static constexpr size_t kBytes = kControl + sizeof(QueryBlockControl) + 1024;  // + alignment of the base
  static_assert(kK % 1024 == 0 && kStageBytes % 1024 == 0 && kControl % 16 == 0, "tiles must be 1 KiB aligned");
};

// The producer warpgroup: the block's key-tile list (count entries from `first`), tile i into stage
// i % kKeyStages once the consumers have released it.
template <typename T, int D, bool kWithDo>
__device__ __forceinline__ void produce_key_tiles(const SparseAttentionParams& p, unsigned char* smem,
                                                  QueryBlockControl& c, int kv_head, int b, int first, int count) {
  using Smem = QueryBlockSmem<D, kWithDo>;
  constexpr int kChunks = D / 8, kRowStep = kWarpgroupThreads / kChunks, kRowsPerThread = kTileKeys / kRowStep;
  const int t = threadIdx.x;
  const int64_t kv_base = int64_t(b) * p.kv_stride[0] + int64_t(kv_head) * p.kv_stride[1];
  const T* k = static_cast<const T*>(p.k) + kv_base;
  const T* v = static_cast<const T*>(p.v) + kv_base;
  const int32_t* key_rows = p.key_rows != nullptr ? p.key_rows : p.plan.key_tile_positions;
  const int32_t* list = p.plan.forward_key_tiles + first;
  const int row0 = t / kChunks;
  for (int i = 0; i < count; ++i) {
    const int stage = i % kKeyStages;
    const int kt = list[i] & kTileIdMask;
    int32_t rows[kRowsPerThread];  // this thread's k/v rows of the tile, loaded before the stage is free
#pragma unroll
    for (int j = 0; j < kRowsPerThread; ++j) rows[j] = key_rows[int64_t(kt) * kTileKeys + row0 + j * kRowStep];
    mbarrier_wait(smem_addr(&c.empty[stage]), ((i / kKeyStages) & 1) ^ 1);
    load_key_meta_async(c.key_meta[stage], p, kt);
    if (t == kWarpgroupThreads - 1) {
      cp_async_4(&c.entry[stage], list + i);
      cp_async_4(&c.key_class[stage], p.plan.key_tile_class + kt);
    }
    auto src_row = [&](int j, int) -> int64_t { return rows[j] < 0 ? -1 : int64_t(rows[j]) * p.kv_stride[2]; };
    unsigned char* k_stage = smem + Smem::kK + stage * Smem::kStageBytes;
    unsigned char* v_stage = smem + Smem::kV + stage * Smem::kStageBytes;
    gather_rows_swizzled<D, kTileKeys, kTileKeys, kWarpgroupThreads>(k_stage, 0, k, t, src_row);
    gather_rows_swizzled<D, kTileKeys, kTileKeys, kWarpgroupThreads>(v_stage, 0, v, t, src_row);
    mbarrier_arrive_on_copies(smem_addr(&c.full[stage]));
  }
  cp_async_wait<0>();  // no copy outlives its thread
}

// Offset of row r of a run of kRows query rows (a query block, or a query tile for the stored-dS dq pass: a query
// head of the group and a position, query_row) in q, d_out, out and dq; -1 past the row's last query.
template <int kRows>
struct QueryRowsOf {
  const SparseAttentionParams& p;
  int b, kv_head, start, group, row_end;
  __device__ __forceinline__ int64_t offset(int r) const {
    return query_row_offset(p, int64_t(b) * p.q_stride[0], kv_head, group, row_end, query_row<kRows>(r, group, start));
  }
  // Index of row r's lse and delta.
  __device__ __forceinline__ int64_t stat(int r) const {
    return query_stat_index(p, b, kv_head, group, query_row<kRows>(r, group, start));
  }
};
using QueryBlockRows = QueryRowsOf<kBlockRows>;

// The consumers' prologue (thread ct of kConsumerThreads): the block's Q rows (and dO rows) into their swizzled
// tiles and its token metadata, visible to wgmma and to every consumer thread on return.
template <typename T, int D, bool kWithDo>
__device__ __forceinline__ void load_query_block(const SparseAttentionParams& p, unsigned char* smem,
                                                 QueryBlockControl& c, const QueryBlockRows& rows, int ct) {
  using Smem = QueryBlockSmem<D, kWithDo>;
  auto q_offset = [&](int, int r) { return rows.offset(r); };
  gather_rows_swizzled<D, kBlockRows, kBlockRows, kConsumerThreads>(smem + Smem::kQ, 0, static_cast<const T*>(p.q),
                                                                    ct, q_offset);
  if constexpr (kWithDo) {
    gather_rows_swizzled<D, kBlockRows, kBlockRows, kConsumerThreads>(smem + Smem::kDo, 0,
                                                                      static_cast<const T*>(p.d_out), ct, q_offset);
  }
  cp_async_commit();
  load_query_meta<kBlockRows>(c.query_meta, p, rows.b, rows.start, ct);
  cp_async_wait<0>();
  fence_async_shared();  // Q and dO, written through the generic proxy, are read by wgmma
  named_barrier_sync(kConsumerBarrier, kConsumerThreads);
}

// Writes a consumer thread's two rows (row_base, row_base + 8) of an m64 x D accumulator (hopper.cuh layout),
// row h times scale[h], to dst (out or dq) as T; rows.offset(m) is accumulator row m's offset in dst (-1: none).
template <typename T, int D, typename Rows>
__device__ __forceinline__ void write_query_rows(T* dst, const Rows& rows, const float (&acc)[D / 2],
                                                 const float (&scale)[2], int row_base, int lane) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int64_t off = rows.offset(row_base + 8 * h);
    if (off < 0) continue;
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      const int col = 8 * j + 2 * (lane & 3);
      *reinterpret_cast<uint32_t*>(dst + off + col) =
          Pack2<T>::from(acc[4 * j + 2 * h] * scale[h], acc[4 * j + 2 * h + 1] * scale[h]);
    }
  }
}

// What a consumer knows of its CTA: shared memory (1 KiB-aligned base and the control block), the block's rows,
// its index and its key tiles' count.
struct QueryBlock {
  unsigned char* smem;
  QueryBlockControl& c;
  QueryBlockRows rows;
  int block, count;
};

// A query-block kernel's body: the CTA's block (blockIdx.x) and KV head (blockIdx.y), its barriers, then the
// producer (warpgroup 0) and the consumers (consume(block, ct), ct = 0 .. kConsumerThreads - 1) with their
// register shares.
template <typename T, int D, bool kWithDo, typename Consume>
__device__ __forceinline__ void run_query_block(const SparseAttentionParams& p, Consume consume) {
  using Smem = QueryBlockSmem<D, kWithDo>;
  unsigned char* smem = aligned_dynamic_smem();
  auto& c = *reinterpret_cast<QueryBlockControl*>(smem + Smem::kControl);
  const int block = blockIdx.x, kv_head = blockIdx.y;
  const int b = p.plan.query_block_row[block];
  const int first = p.plan.forward_offsets[block];
  const int count = p.plan.forward_offsets[block + 1] - first;
  if (threadIdx.x == 0) {
    for (int s = 0; s < kKeyStages; ++s) {
      mbarrier_init(smem_addr(&c.full[s]), kWarpgroupThreads);
      mbarrier_init(smem_addr(&c.empty[s]), kConsumerThreads);
    }
    mbarrier_init_fence();
  }
  __syncthreads();
  if (threadIdx.x < kWarpgroupThreads) {
    registers_release<kProducerRegisters>();
    produce_key_tiles<T, D, kWithDo>(p, smem, c, kv_head, b, first, count);
  } else {
    registers_claim<kConsumerRegisters>();
    const QueryBlockRows rows{p, b, kv_head, p.plan.query_block_start[block], p.q_heads / p.kv_heads,
                              p.row_query_end[b]};
    consume(QueryBlock{smem, c, rows, block, count}, int(threadIdx.x) - kWarpgroupThreads);
  }
}

// The mask (gist_mask.h's folded form, once a tile per row) on the 2 x 16 scores a consumer thread holds of a key
// tile, s[4 j + 2 h + e] (rows row_base + 8 h, tile columns 8 j + 2 (lane % 4) + e), as bits: bit 4 j + 2 h + e
// set where the key is visible. For keys whose k/v row is their position (key_rows null). The generic predicate
// made the integer pipe the busiest on the H200 (issue slots half busy at 32K tokens).
__device__ __forceinline__ uint32_t allowed_bits_fast(const QueryMetaSmem<kBlockRows>& qm, const KeyMetaSmem& km,
                                                      int key_class, const GistMaskRule& rule, int row_base,
                                                      int lane) {
  FoldedMaskQuery q[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) q[h] = fold_mask_query(key_class, mask_query(qm, row_base + 8 * h, key_class,
                                                                           rule.levels), rule);
  uint32_t bits = 0;
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const int col = 8 * j + 2 * (lane & 3);
    const int2 k_pos = *reinterpret_cast<const int2*>(km.pos + col);
    const int2 k_doc = *reinterpret_cast<const int2*>(km.doc + col);
    const int2 k_chunk0 = *reinterpret_cast<const int2*>(km.chunk0 + col);
    const int2 k_up = *reinterpret_cast<const int2*>(km.chunk_up + col);
#pragma unroll
    for (int e = 0; e < 2; ++e) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const bool allowed = folded_mask_allows(key_class, q[h], e ? k_pos.y : k_pos.x, e ? k_doc.y : k_doc.x,
                                                e ? k_chunk0.y : k_chunk0.x, e ? k_up.y : k_up.x, rule);
        bits |= uint32_t(allowed) << (4 * j + 2 * h + e);
      }
    }
  }
  return bits;
}

// Which of a consumer thread's 32 scores of one key tile (list entry `entry`, class key_class, metadata km) the
// mask lets through, as allowed_bits_fast's bits: all of a whole tile's (most tiles of a long list, no work).
// Kept apart from the scores so that the whole-tile path leaves them in the registers wgmma wrote (masking in
// place made the compiler copy all 32 on that path).
__device__ __forceinline__ uint32_t tile_allowed_bits(const SparseAttentionParams& p,
                                                                      const QueryMetaSmem<kBlockRows>& qm,
                                                                      const KeyMetaSmem& km, int32_t entry,
                                                                      int key_class, int32_t block_flags,
                                                                      int row_base, int lane) {
  if (tile_taken_whole(entry & kFullTile, key_class, block_flags, p.rule)) return ~0u;
  if (p.key_rows == nullptr) return allowed_bits_fast(qm, km, key_class, p.rule, row_base, lane);
  // Keys held in other rows (sequence parallelism): the generic predicate.
  uint32_t bits = 0;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const MaskQuery q = mask_query(qm, row_base + 8 * h, key_class, p.rule.levels);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const MaskKey key = mask_key(km, 8 * j + 2 * (lane & 3) + e);
        bits |= uint32_t(gist_mask_allows_class(key_class, q, key, p.rule)) << (4 * j + 2 * h + e);
      }
    }
  }
  return bits;
}

}  // namespace gsa::kernels::detail
