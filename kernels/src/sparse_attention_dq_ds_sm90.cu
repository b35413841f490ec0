// The stored-dS dq pass of the block-sparse GSA backward on Hopper (wgmma; GSA_SM90_DQ=2): dq = scale * sum dS K
// from the dS tiles the key pass stored (sparse_attention_key_pass_sm90.cu, store_ds_tile), one product a visited
// (query tile, key tile) pair where the query-block dq pass (sparse_attention_dq_sm90.cu) recomputes S = Q K^T and
// dP = dO V^T first: of the backward's ~33 TFLOP at 128K tokens, the ~9.4 of that recomputation, for ~38 GB of dS
// written once and read once (docs/kernels-notes.md prices it).
//
// One CTA per (query tile of kTileRows rows, KV head), the tile's visits in order (TilePlanView::query_tile_offsets,
// whose indices are the dS slots): a producer warpgroup gathers each visited key tile's K rows and copies its dS^T
// tile (8 KiB, stored swizzled: copied as is) into kDsStages shared-memory stages handed over by mbarriers; one
// consumer warpgroup issues dQ += dS K per stage (wgmma, both operands from shared memory and MN-major: dS^T is
// stored keys x query rows, K keys x D) and releases a stage once the next stage's products are issued (a group in
// flight). Deterministic: each dq row is written once, by its query tile's CTA, in list order.
#include <cuda_runtime.h>

#include <cstdint>

#include "dispatch.cuh"
#include "query_block_sm90.cuh"
#include "sparse_attention_launch.h"

namespace gsa::kernels::detail {
namespace {

constexpr int kDsStages = 4;
constexpr int kDsThreads = 2 * kWarpgroupThreads;               // producer, consumer
constexpr int kDsTileBytes = kTileKeys * kTileRows * 2;         // one stored dS^T tile
static_assert(kTileRows == 64, "a stored dS^T tile is one 128-byte swizzle block wide (64 query rows)");

struct DqFromDsControl {
  uint64_t full[kDsStages];   // a stage's copies have landed (kWarpgroupThreads arrivals)
  uint64_t empty[kDsStages];  // the consumer's products have read a stage (kWarpgroupThreads arrivals)
};

// Byte offsets from the 1 KiB-aligned base: K stages, dS stages, control.
template <int D>
struct DqFromDsSmem {
  static constexpr int kKBytes = kTileKeys * D * 2;
  static constexpr int kK = 0;
  static constexpr int kDs = kDsStages * kKBytes;
  static constexpr int kControl = kDs + kDsStages * kDsTileBytes;
  static constexpr size_t kBytes = kControl + sizeof(DqFromDsControl) + 1024;  // + alignment of the base
  static_assert(kKBytes % 1024 == 0 && kDs % 1024 == 0 && kControl % 16 == 0, "tiles must be 1 KiB aligned");
};

// The producer (thread t of warpgroup 0): visit i of the query tile (key tile list[i], dS slot first + i) into
// stage i % kDsStages once the consumer has released it.
template <typename T, int D>
__device__ __forceinline__ void produce(const SparseAttentionParams& p, unsigned char* smem, DqFromDsControl& c,
                                        int kv_head, int b, int first, int count) {
  using Smem = DqFromDsSmem<D>;
  constexpr int kChunks = D / 8, kRowStep = kWarpgroupThreads / kChunks, kRowsPerThread = kTileKeys / kRowStep;
  constexpr int kDsChunksPerThread = kDsTileBytes / 16 / kWarpgroupThreads;
  const int t = threadIdx.x;
  const T* k = static_cast<const T*>(p.k) + int64_t(b) * p.kv_stride[0] + int64_t(kv_head) * p.kv_stride[1];
  const int32_t* key_rows = p.key_rows != nullptr ? p.key_rows : p.plan.key_tile_positions;
  const int32_t* list = p.plan.query_tile_key_tiles + first;
  const unsigned char* ds = static_cast<const unsigned char*>(p.ds) +
                            (int64_t(kv_head) * p.plan.num_tile_pairs + first) * int64_t(kDsTileBytes);
  const int row0 = t / kChunks;
  const uint64_t read_once = evict_first_policy();  // the dS tiles: each read once, ~38 GB at 128K
  for (int i = 0; i < count; ++i) {
    const int stage = i % kDsStages;
    const int kt = list[i] & kTileIdMask;
    int32_t rows[kRowsPerThread];  // this thread's k rows of the tile, loaded before the stage is free
#pragma unroll
    for (int j = 0; j < kRowsPerThread; ++j) rows[j] = key_rows[int64_t(kt) * kTileKeys + row0 + j * kRowStep];
    mbarrier_wait(smem_addr(&c.empty[stage]), ((i / kDsStages) & 1) ^ 1);
    auto src_row = [&](int j, int) -> int64_t { return rows[j] < 0 ? -1 : int64_t(rows[j]) * p.kv_stride[2]; };
    gather_rows_swizzled<D, kTileKeys, kTileKeys, kWarpgroupThreads>(smem + Smem::kK + stage * Smem::kKBytes, 0, k,
                                                                     t, src_row);
    unsigned char* ds_stage = smem + Smem::kDs + stage * kDsTileBytes;
    const unsigned char* ds_tile = ds + int64_t(i) * kDsTileBytes;
#pragma unroll
    for (int j = 0; j < kDsChunksPerThread; ++j) {
      const int chunk = t + j * kWarpgroupThreads;
      cp_async_16_read_once(ds_stage + 16 * chunk, ds_tile + 16 * chunk, read_once);
    }
    mbarrier_arrive_on_copies(smem_addr(&c.full[stage]));
  }
  cp_async_wait<0>();  // no copy outlives its thread
}

// The query tile's rows in the stored dS tiles' order: accumulator row m (position m of a stored row) is query row
// stored_ds_query_row(m) of the tile.
struct StoredDsRows {
  QueryRowsOf<kTileRows> rows;
  __device__ __forceinline__ int64_t offset(int m) const { return rows.offset(stored_ds_query_row(m)); }
};

// The consumer (thread ct of warpgroup 1): dQ (m64 x D, hopper.cuh layout, rows in the stored order) over the tile's
// visits, written as T times the scale.
template <typename T, int D>
__device__ __forceinline__ void consume(const SparseAttentionParams& p, unsigned char* smem, DqFromDsControl& c,
                                        const QueryRowsOf<kTileRows>& rows, int count, int ct) {
  using Smem = DqFromDsSmem<D>;
  const int warp = ct / 32, lane = ct & 31;
  const uint32_t k_base = smem_addr(smem + Smem::kK), ds_base = smem_addr(smem + Smem::kDs);
  float dq[D / 2];
#pragma unroll
  for (int j = 0; j < D / 2; ++j) dq[j] = 0.f;
  for (int i = 0; i < count; ++i) {
    const int stage = i % kDsStages;
    mbarrier_wait(smem_addr(&c.full[stage]), (i / kDsStages) & 1);
    const uint32_t k_addr = k_base + stage * Smem::kKBytes, ds_addr = ds_base + stage * kDsTileBytes;
    fence_registers(dq);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kTileKeys / 16; ++kk) {  // k-step kk: keys 16 kk .. 16 kk + 15, rows of both tiles
      wgmma_ss_mn<T, D>(dq, mn_major_desc(ds_addr + kk * 16 * 128, 1024 * (kTileKeys / 8)),
                        mn_major_desc(k_addr + kk * 16 * 128, 1024 * (kTileKeys / 8)), 1);
    }
    wgmma_commit();
    wgmma_wait<1>();  // the previous visit's products are done with their stage
    fence_registers(dq);
    if (i > 0) mbarrier_arrive(smem_addr(&c.empty[(i - 1) % kDsStages]));
  }
  wgmma_wait<0>();
  fence_registers(dq);
  const float scale[2] = {p.scale, p.scale};
  write_query_rows<T, D>(static_cast<T*>(p.dq), StoredDsRows{rows}, dq, scale, warp * 16 + (lane >> 2), lane);
}

template <typename T, int D>
__global__ void __launch_bounds__(kDsThreads, 2) dq_ds_sm90_kernel(const __grid_constant__ SparseAttentionParams p) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)  // wgmma: sm_90a only
  unsigned char* smem = aligned_dynamic_smem();
  auto& c = *reinterpret_cast<DqFromDsControl*>(smem + DqFromDsSmem<D>::kControl);
  const int qt = blockIdx.x, kv_head = blockIdx.y;
  const int b = p.plan.query_tile_row[qt];
  const int first = p.plan.query_tile_offsets[qt], count = p.plan.query_tile_offsets[qt + 1] - first;
  if (threadIdx.x == 0) {
    for (int s = 0; s < kDsStages; ++s) {
      mbarrier_init(smem_addr(&c.full[s]), kWarpgroupThreads);
      mbarrier_init(smem_addr(&c.empty[s]), kWarpgroupThreads);
    }
    mbarrier_init_fence();
  }
  __syncthreads();
  if (threadIdx.x < kWarpgroupThreads) {
    produce<T, D>(p, smem, c, kv_head, b, first, count);
  } else {
    const QueryRowsOf<kTileRows> rows{p, b, kv_head, p.plan.query_tile_start[qt], p.q_heads / p.kv_heads,
                                      p.row_query_end[b]};
    consume<T, D>(p, smem, c, rows, count, int(threadIdx.x) - kWarpgroupThreads);
  }
#else
  __trap();  // not built for sm_90a: sparse_attention_backward_stored_ds() is kNever in such a build
#endif
}

}  // namespace

Status launch_dq_ds_sm90(const SparseAttentionParams& p, void* stream) {
  if (p.plan.num_query_tiles == 0) return Status::kOk;
  return with_type_and_dim(p, [&](auto type, auto dim) {
    using T = typename decltype(type)::type;
    constexpr int D = dim.value;
    return launch_with_smem(dq_ds_sm90_kernel<T, D>, dim3(p.plan.num_query_tiles, p.kv_heads), kDsThreads,
                            DqFromDsSmem<D>::kBytes, static_cast<cudaStream_t>(stream), p);
  });
}

}  // namespace gsa::kernels::detail
