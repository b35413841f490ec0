// The key-tile pass of the block-sparse GSA backward on Hopper (wgmma; GSA_SM90_BACKWARD=0 selects the mma.sync one):
// dK and dV of one backward item (a key tile of 64 keys and a run of the query tiles that see it; for large plans a
// paired item: two key tiles and the merged run, each query tile loaded once for both) per CTA and KV head, a
// producer warpgroup and one or two consumer warpgroups (KeyPassShape):
//   producer (warpgroup 0): the key tile's K and V rows and mask metadata once, then per query tile its Q and dO
//     rows (gathered: a tile packs the group's query heads), token metadata, lse, delta and list entry into one of
//     the shared-memory stages by cp.async, handed over by mbarriers as in the forward
//     (sparse_attention_forward_sm90.cu; the gather is sparse_attention_sm90.cuh's);
//   consumers (the 64 keys as the M dimension, warp w = keys 16 w .. 16 w + 15; with two, query tile i goes to
//     consumer i % 2, or, paired, to the consumer of each key tile that sees it): per query tile S^T = K Q^T and
//     dP^T = V dO^T (wgmma, both operands from shared memory, m64 n64), the mask (the generic predicate, for
//     entries without kFullTile), P^T = exp2(S^T - lse), dS^T = P^T (dP^T - delta), then dV += P^T dO and
//     dK += dS^T Q (wgmma, P^T and dS^T from registers, Q and dO as MN-major operands).
// dQ is left to the query-block pass (run_backward runs it first), or, with a stored-dS workspace (p.ds), to the
// stored-dS dq pass after this one: each visited pair's dS^T (as packed for dK) is stored to its slot
// (store_ds_tile) before dK's product is issued. The item's dK * scale and dV go to the fp32 workspaces as in
// key_pass_kernel (atomic adds when several items share the key tile). Same contract as the mma.sync key pass
// (sparse_attention_key_pass.cu), the kernel for other GPUs. On the H200 (2026-12-03, 128K
// tokens, Nsight Compute's locked clocks): 115.5 ms with one consumer, 80.4 with two, 92.6 the mma.sync pass; paired
// items (2026-12-04) took forward+backward at 128K from 111.5 to 101.4 ms (kPairedKeyPassEntries says where).
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "dispatch.cuh"
#include "sparse_attention_launch.h"
#include "sparse_attention_sm90.cuh"

namespace gsa::kernels::detail {
namespace {

constexpr int kWarpgroup = 128;
constexpr int kConsumerBarrier = 1;  // named barrier among the consumer warpgroups

// The consumers of a CTA (GSA_SM90_BACKWARD = 1, 2 or 3): one warpgroup takes every query tile of the item; or two,
// taking turns (tile i to warpgroup i % 2), each with its own dK / dV partial sums, added in shared memory at the
// end, so one's elementwise work runs while the other's products do; or (kPaired, 3) two, each with its own key
// tile of a paired item (TilePlanView::backward_pairs), both taking every query tile, loaded once for the two.
template <int kConsumers, bool kPaired = false>
struct KeyPassShape {
  static_assert(!kPaired || kConsumers == 2, "a paired item takes one consumer a key tile");
  static constexpr int kThreads = (1 + kConsumers) * kWarpgroup;
  static constexpr int kStages = kConsumers == 1 ? 3 : 4;
  static constexpr int kKeyTiles = kPaired ? 2 : 1;
  // setmaxnreg with two consumers: 128 x producer + 256 x consumer <= 384 x 168 (the launch's share).
  static constexpr int kProducerRegisters = 56, kConsumerRegisters = 224;
  static_assert(kConsumers == 1 || kWarpgroup * kProducerRegisters + 2 * kWarpgroup * kConsumerRegisters <=
                                       kThreads * 168, "setmaxnreg asks for more registers than the launch holds");
};
constexpr int kMaxStages = KeyPassShape<2>::kStages;

// The list a CTA's item (blockIdx.x) is in: the plan's per-tile items, or its paired ones (kPaired: key_tiles holds
// two an item, the second -1 where the pair has one tile).
template <bool kPaired>
__device__ __forceinline__ const BackwardListView& item_list(const TilePlanView& plan) {
  return kPaired ? plan.backward_pairs : plan.backward;
}
template <bool kPaired>
__device__ __forceinline__ int item_key_tile(const TilePlanView& plan, int item, int w) {
  return item_list<kPaired>(plan).key_tiles[(kPaired ? 2 : 1) * item + w];
}
constexpr int32_t entry_tile_mask(bool paired) { return paired ? kPairTileMask : kTileIdMask; }

// One query tile's rows as the consumer reads them.
struct QueryStageInfo {
  int32_t entry, start, flags, pad;
  int32_t ds_slot[2], pad2[2];  // stored dS (p.ds set): the pair's slot for tile w of the item
  int32_t meta[kTileRows * kTokenMetaInts];  // positions start .. start + kTileRows / group - 1
  float lse[kTileRows];                      // per row (0 past the row's last query)
  float delta[kTileRows];
};

struct KeyPassControl {
  alignas(16) KeyMetaSmem key_meta[2];  // cp.async destinations: 16-byte aligned; [1]: a pair's second tile
  alignas(16) QueryStageInfo info[kMaxStages];
  uint64_t kv_full;            // the key tile's K, V and metadata have landed
  uint64_t full[kMaxStages];   // a query stage has landed (kWarpgroup arrivals)
  uint64_t empty[kMaxStages];  // its consumer warpgroups are done with a query stage (kWarpgroup arrivals each)
};

template <int D, int kConsumers, bool kPaired>
struct KeyPassSm90Smem {
  static constexpr int kStages = KeyPassShape<kConsumers, kPaired>::kStages;
  static constexpr int kKeyTiles = KeyPassShape<kConsumers, kPaired>::kKeyTiles;
  static constexpr int kTileBytes = kTileKeys * D * 2;  // K, V, and a stage's Q or dO (kTileRows == kTileKeys)
  static constexpr int kK = 0, kV = kKeyTiles * kTileBytes;  // kKeyTiles tiles each
  static constexpr int kQ = 2 * kKeyTiles * kTileBytes;     // kStages stages
  static constexpr int kDo = kQ + kStages * kTileBytes;  // kStages stages
  static constexpr int kControl = kDo + kStages * kTileBytes;
  static constexpr size_t kBytes = kControl + sizeof(KeyPassControl) + 1024;  // + alignment of the base to 1 KiB
  static_assert(kTileRows == kTileKeys, "query and key tiles share one operand tile shape");
  static_assert(kK % 1024 == 0 && kV % 1024 == 0 && kQ % 1024 == 0 && kDo % 1024 == 0 && kControl % 16 == 0,
                "operand tiles must be 1 KiB aligned (the swizzle is on address bits)");
  // Two consumers: the second's dK / dV partial sums (fp32, D a thread) pass through the Q stages at the end.
  static_assert(kConsumers == 1 || kWarpgroup * D * 4 <= kStages * kTileBytes, "no room for the partial sums");
};

template <typename T, int D, int kConsumers, bool kPaired, bool kStoreDs>
__device__ __forceinline__ void produce(const SparseAttentionParams& p, unsigned char* smem, KeyPassControl& c,
                                        int kv_head, int b) {
  using Smem = KeyPassSm90Smem<D, kConsumers, kPaired>;
  constexpr int kStages = Smem::kStages;
  const int t = threadIdx.x;
  const BackwardListView& list = item_list<kPaired>(p.plan);
  const int first = list.offsets[blockIdx.x], count = list.offsets[blockIdx.x + 1] - first;
  const int group = p.q_heads / p.kv_heads;
  const int row_end = p.row_query_end[b];
  const int64_t kv_base = int64_t(b) * p.kv_stride[0] + int64_t(kv_head) * p.kv_stride[1];
  const int64_t q_batch = int64_t(b) * p.q_stride[0];
#pragma unroll
  for (int w = 0; w < Smem::kKeyTiles; ++w) {
    const int key_tile = item_key_tile<kPaired>(p.plan, blockIdx.x, w);
    if (key_tile < 0) continue;  // a pair's missing second tile: its consumer computes nothing
    auto kv_row = [&](int, int r) -> int64_t {
      const int32_t row = key_row(p, key_tile, r);
      return row < 0 ? -1 : int64_t(row) * p.kv_stride[2];
    };
    gather_rows_swizzled<D, kTileKeys, kTileKeys, kWarpgroup>(smem + Smem::kK + w * Smem::kTileBytes, 0,
                                                              static_cast<const T*>(p.k) + kv_base, t, kv_row);
    gather_rows_swizzled<D, kTileKeys, kTileKeys, kWarpgroup>(smem + Smem::kV + w * Smem::kTileBytes, 0,
                                                              static_cast<const T*>(p.v) + kv_base, t, kv_row);
    load_key_meta_async(c.key_meta[w], p, key_tile);
  }
  mbarrier_arrive_on_copies(smem_addr(&c.kv_full));

  for (int i = 0; i < count; ++i) {
    const int stage = i % kStages;
    const int start = list.query_start[first + i];
    mbarrier_wait(smem_addr(&c.empty[stage]), ((i / kStages) & 1) ^ 1);
    QueryStageInfo& info = c.info[stage];
    if (t == kWarpgroup - 1) {
      cp_async_4(&info.entry, list.entries + first + i);
      cp_async_4(&info.start, list.query_start + first + i);
      cp_async_4(&info.flags, list.query_flags + first + i);
    }
    if (kStoreDs && t >= kWarpgroup - Smem::kKeyTiles) {  // one thread a tile of the item
      const int w = kWarpgroup - 1 - t;
      cp_async_4(&info.ds_slot[w], list.ds_slot + int64_t(Smem::kKeyTiles) * (first + i) + w);
    }
    load_query_tile_rows_async<kTileRows>(info.meta, info.lse, info.delta, p, b, kv_head, group, row_end, start, t);
    auto q_row = [&](int, int r) {
      return query_row_offset(p, q_batch, kv_head, group, row_end, query_row<kTileRows>(r, group, start));
    };
    unsigned char* q_stage = smem + Smem::kQ + stage * Smem::kTileBytes;
    unsigned char* do_stage = smem + Smem::kDo + stage * Smem::kTileBytes;
    gather_rows_swizzled<D, kTileRows, kTileRows, kWarpgroup>(q_stage, 0, static_cast<const T*>(p.q), t, q_row);
    gather_rows_swizzled<D, kTileRows, kTileRows, kWarpgroup>(do_stage, 0, static_cast<const T*>(p.d_out), t, q_row);
    mbarrier_arrive_on_copies(smem_addr(&c.full[stage]));
  }
  cp_async_wait<0>();  // no copy outlives its thread
}

// Stores a consumer thread's dS^T values (a_ds: keys key_base + 8 h, query rows 8 j + 2 (lane % 4) + e, as packed
// in consume) into the pair's slot of the stored-dS workspace, in the layout the dq pass reads
// (sparse_attention_device.cuh, stored_ds_query_row): a key's 16 values from this thread are bytes 32 (lane % 4)
// .. + 31 of its 128-byte row, chunks 2 (lane % 4) + c (query rows j = 4 c .. 4 c + 3), each at chunk ^ (key % 8).
// Four 16-byte stores a thread, each sector written whole by one thread.
template <typename T>
__device__ __forceinline__ void store_ds_tile(const SparseAttentionParams& p, int32_t slot, int kv_head,
                                              const uint32_t (&a_ds)[4][4], int key_base, int lane) {
  unsigned char* tile = static_cast<unsigned char*>(p.ds) +
                        (int64_t(kv_head) * p.plan.num_tile_pairs + slot) * int64_t(kTileKeys * kTileRows * 2);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int key = key_base + 8 * h;
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      const uint32_t at = uint32_t(key * 128 + (((2 * (lane & 3) + c) ^ (key & 7)) << 4));
      // a_ds[j / 2][2 (j % 2) + h] holds query rows 8 j + 2 (lane % 4) + {0, 1}: j = 4 c, 4 c + 1, 4 c + 2, 4 c + 3.
      // Streaming (.cs: evicted first), so ~38 GB of dS at 128K do not push the Q and dO rows out of L2.
      asm volatile("st.global.cs.v4.b32 [%0], {%1, %2, %3, %4};\n" ::"l"(tile + at), "r"(a_ds[2 * c][h]),
                   "r"(a_ds[2 * c][2 + h]), "r"(a_ds[2 * c + 1][h]), "r"(a_ds[2 * c + 1][2 + h])
                   : "memory");
    }
  }
}

template <typename T, int D, int kConsumers, bool kPaired, bool kStoreDs>
__device__ __forceinline__ void consume(const SparseAttentionParams& p, unsigned char* smem, KeyPassControl& c,
                                        int kv_head, int b) {
  using Smem = KeyPassSm90Smem<D, kConsumers, kPaired>;
  constexpr int kStages = Smem::kStages;
  const BackwardListView& list = item_list<kPaired>(p.plan);
  const int count = list.offsets[blockIdx.x + 1] - list.offsets[blockIdx.x];
  const int ct = threadIdx.x - kWarpgroup;  // 0 .. kConsumers * kWarpgroup - 1
  const int wg = ct / kWarpgroup, warp = (ct % kWarpgroup) / 32, lane = ct & 31;
  const int group = p.q_heads / p.kv_heads;
  const int row_end = p.row_query_end[b];
  // Paired: warpgroup wg's key tile is the pair's tile wg (none: it only releases the stages); else the item's.
  // The warpgroup index broadcast from lane 0, so ptxas knows it is warp-uniform and keeps what derives from it
  // (the tile's shared-memory descriptors) in uniform registers.
  const int tile = kPaired ? __shfl_sync(0xffffffffu, wg, 0) : 0;
  const int key_tile = item_key_tile<kPaired>(p.plan, blockIdx.x, tile);
  const int key_class = key_tile >= 0 ? p.plan.key_tile_class[key_tile] : 0;
  // Whether this warpgroup's tile sees an entry's query tile, and whole (kPairVisit / kPairFull << tile).
  auto visits = [&](int32_t entry) { return !kPaired || ((entry >> tile) & kPairVisit) != 0; };
  auto whole = [&](int32_t entry) { return ((entry >> tile) & (kPaired ? kPairFull : kFullTile)) != 0; };
  const KeyMetaSmem& key_meta = c.key_meta[tile];
  const float scale2 = p.scale * kLog2e;
  const int key_base = warp * 16 + (lane >> 2);  // + 8 h: this thread's two keys (rows of S^T)
  const uint32_t k_addr = smem_addr(smem + Smem::kK + tile * Smem::kTileBytes);
  const uint32_t v_addr = smem_addr(smem + Smem::kV + tile * Smem::kTileBytes);

  float dk[D / 2], dv[D / 2];  // m64 (keys) x D accumulators (hopper.cuh layout)
  float st[32], dpt[32];       // S^T then P^T, dP^T then dS^T: m64 (keys) x 64 query rows
  uint32_t a_p[4][4], a_ds[4][4];
#pragma unroll
  for (int j = 0; j < D / 2; ++j) dk[j] = dv[j] = 0.f;
#pragma unroll
  for (int j = 0; j < 32; ++j) st[j] = dpt[j] = 0.f;
  mbarrier_wait(smem_addr(&c.kv_full), 0);

  for (int i = kPaired ? 0 : wg; i < count; i += kPaired ? 1 : kConsumers) {
    const int stage = i % kStages;
    mbarrier_wait(smem_addr(&c.full[stage]), (i / kStages) & 1);
    const QueryStageInfo& info = c.info[stage];
    if (!visits(info.entry)) {  // the pair's other tile alone sees this query tile
      mbarrier_arrive(smem_addr(&c.empty[stage]));
      continue;
    }
    const uint32_t q_addr = smem_addr(smem + Smem::kQ + stage * Smem::kTileBytes);
    const uint32_t do_addr = smem_addr(smem + Smem::kDo + stage * Smem::kTileBytes);

    // S^T = K Q^T and dP^T = V dO^T.
    wgmma_fence();
    wgmma_rows_times_tile_t<T, D, kTileKeys>(st, k_addr, q_addr);
    wgmma_rows_times_tile_t<T, D, kTileKeys>(dpt, v_addr, do_addr);
    wgmma_commit();
    wgmma_wait<0>();
    fence_registers(st);
    fence_registers(dpt);

    const int32_t entry = info.entry, start = info.start;
    const bool full = tile_taken_whole(whole(entry), key_class, info.flags, p.rule);
    // Column 8 j + 2 (lane % 4) + e is query row r of the tile: its statistics, and its mask fields.
#pragma unroll
    for (int j = 0; j < 8; ++j) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int r = 8 * j + 2 * (lane & 3) + e;
        if (!full) {
          const MaskQuery q = query_tile_mask_query<kTileRows>(info.meta, r, group, start, row_end, key_class, p.rule);
#pragma unroll
          for (int h = 0; h < 2; ++h) {  // this thread's keys read from shared memory: no registers held
            if (!gist_mask_allows_class(key_class, q, mask_key(key_meta, key_base + 8 * h), p.rule))
              st[4 * j + 2 * h + e] = -INFINITY;
          }
        }
        const float lse = info.lse[r];
        const float lse2 = isfinite(lse) ? lse * kLog2e : 0.f;  // a row without keys: every score is masked
        const float delta = info.delta[r];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int x = 4 * j + 2 * h + e;
          st[x] = exp2_approx(fmaf(st[x], scale2, -lse2));  // masked: exp2(-inf) = 0
          dpt[x] = st[x] * (dpt[x] - delta);                 // masked: P = 0 (delta and dP finite)
        }
      }
      // Scores 4 j .. 4 j + 3 are the A operands' pairs (k-step j / 2, registers 2 (j % 2) + h): packed now, so
      // their fp32 registers die before the next columns' (the consumer's registers are capped by setmaxnreg).
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        a_p[j / 2][2 * (j % 2) + h] = Pack2<T>::from(st[4 * j + 2 * h], st[4 * j + 2 * h + 1]);
        a_ds[j / 2][2 * (j % 2) + h] = Pack2<T>::from(dpt[4 * j + 2 * h], dpt[4 * j + 2 * h + 1]);
      }
    }
    // Stored dS: before the products that read a_ds are issued (the PTX ISA leaves reading a wgmma's register
    // operand before its wait undefined); the stores do not block.
    if constexpr (kStoreDs) store_ds_tile<T>(p, info.ds_slot[tile], kv_head, a_ds, key_base, lane);
    // dV += P^T dO and dK += dS^T Q: k-step kk = query rows 16 kk .. 16 kk + 15, dO and Q MN-major.
    fence_registers(dv);
    fence_registers(dk);
    wgmma_fence();
    wgmma_regs_times_tile<T, D>(dv, a_p, do_addr);
    wgmma_regs_times_tile<T, D>(dk, a_ds, q_addr);
    wgmma_commit();
    wgmma_wait<0>();
    fence_registers(dv);
    fence_registers(dk);
    mbarrier_arrive(smem_addr(&c.empty[stage]));
  }

  if constexpr (kConsumers == 2 && !kPaired) {
    // Warpgroup 1's partial sums into the Q stages (free once both are done with every stage: the producer has
    // no copy left), added by warpgroup 0, which writes the item's gradients.
    float* partial = reinterpret_cast<float*>(smem + Smem::kQ);  // [D][kWarpgroup]: conflict-free
    const int t = ct % kWarpgroup;
    named_barrier_sync(kConsumerBarrier, 2 * kWarpgroup);
    if (wg == 1) {
#pragma unroll
      for (int j = 0; j < D / 2; ++j) {
        partial[j * kWarpgroup + t] = dk[j];
        partial[(D / 2 + j) * kWarpgroup + t] = dv[j];
      }
    }
    named_barrier_sync(kConsumerBarrier, 2 * kWarpgroup);
    if (wg == 1) return;
#pragma unroll
    for (int j = 0; j < D / 2; ++j) {
      dk[j] += partial[j * kWarpgroup + t];
      dv[j] += partial[(D / 2 + j) * kWarpgroup + t];
    }
  }
  if (key_tile < 0) return;
  const bool shared = list.shared[blockIdx.x] != 0;
  write_key_gradients<D>(p, key_meta.row, key_base, lane, b, kv_head, shared, [&](int h, int j) {
    return KeyGradientPairs{make_float2(dk[4 * j + 2 * h] * p.scale, dk[4 * j + 2 * h + 1] * p.scale),
                            make_float2(dv[4 * j + 2 * h], dv[4 * j + 2 * h + 1])};
  });
}

template <typename T, int D, int kConsumers, bool kPaired, bool kStoreDs>
__global__ void __launch_bounds__(KeyPassShape<kConsumers, kPaired>::kThreads, 1)
    key_pass_sm90_kernel(const __grid_constant__ SparseAttentionParams p) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)  // wgmma: sm_90a only
  using Smem = KeyPassSm90Smem<D, kConsumers, kPaired>;
  using Shape = KeyPassShape<kConsumers, kPaired>;
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = smem_raw + ((1024 - (smem_addr(smem_raw) & 1023)) & 1023);
  auto& c = *reinterpret_cast<KeyPassControl*>(smem + Smem::kControl);
  const int kv_head = blockIdx.y;
  const BackwardListView& list = item_list<kPaired>(p.plan);
  const int b = p.plan.query_tile_row[list.entries[list.offsets[blockIdx.x]] & entry_tile_mask(kPaired)];
  if (threadIdx.x == 0) {
    mbarrier_init(smem_addr(&c.kv_full), kWarpgroup);
    for (int s = 0; s < Shape::kStages; ++s) {
      mbarrier_init(smem_addr(&c.full[s]), kWarpgroup);
      mbarrier_init(smem_addr(&c.empty[s]), (kPaired ? kConsumers : 1) * kWarpgroup);
    }
    mbarrier_init_fence();
  }
  __syncthreads();
  if (threadIdx.x < kWarpgroup) {
    if constexpr (kConsumers == 2) registers_release<Shape::kProducerRegisters>();
    produce<T, D, kConsumers, kPaired, kStoreDs>(p, smem, c, kv_head, b);
  } else {
    if constexpr (kConsumers == 2) registers_claim<Shape::kConsumerRegisters>();
    consume<T, D, kConsumers, kPaired, kStoreDs>(p, smem, c, kv_head, b);
  }
#else
  __trap();  // not built for sm_90a: key_pass_sm90_enabled() is false in such a build
#endif
}

// GSA_SM90_BACKWARD (read once): 1 or 2 = this kernel with that many consumer warpgroups over the plan's
// per-tile items, 3 = two consumers over its paired items, unset = 3 for plans of at least kPairedKeyPassEntries
// entries and 2 below (kAutoSchedule), 0 or any other value the mma.sync key pass.
constexpr int kAutoSchedule = -1;
int key_pass_sm90_schedule() {
  static const int schedule = [] {
    const int n = env_int("GSA_SM90_BACKWARD", kAutoSchedule);
    return n == kAutoSchedule || (n >= 1 && n <= 3) ? n : 0;
  }();
  return schedule;
}

// kStoreDs: the kernel that stores dS (p.ds set) is an instantiation of its own, so the one that does not keeps its
// registers (the two-consumer kernels at D 128 spill ~100 bytes already; the store's live values add ~30-60).
template <typename T, int D, int kConsumers, bool kPaired>
Status launch(const SparseAttentionParams& p, cudaStream_t stream) {
  const int items = (kPaired ? p.plan.backward_pairs : p.plan.backward).num_items;
  auto kernel = p.ds != nullptr ? key_pass_sm90_kernel<T, D, kConsumers, kPaired, true>
                                : key_pass_sm90_kernel<T, D, kConsumers, kPaired, false>;
  return launch_with_smem(kernel, dim3(items, p.kv_heads),
                          KeyPassShape<kConsumers, kPaired>::kThreads, KeyPassSm90Smem<D, kConsumers, kPaired>::kBytes,
                          stream, p);
}

}  // namespace

bool key_pass_sm90_enabled() { return key_pass_sm90_schedule() != 0 && hopper_kernels_available(); }

Status launch_key_pass_sm90(const SparseAttentionParams& p, void* stream) {
  if (p.plan.backward.num_items == 0) return Status::kOk;
  // A plan without paired lists (a view built by hand) runs the per-tile items.
  int requested = key_pass_sm90_schedule();
  if (requested == kAutoSchedule) requested = p.plan.backward.num_entries >= kPairedKeyPassEntries ? 3 : 2;
  const int schedule = requested == 3 && p.plan.backward_pairs.num_items == 0 ? 2 : requested;
  return with_type_and_dim(p, [&](auto type, auto dim) {
    using T = typename decltype(type)::type;
    const auto s = static_cast<cudaStream_t>(stream);
    switch (schedule) {
      case 1: return launch<T, dim.value, 1, false>(p, s);
      case 2: return launch<T, dim.value, 2, false>(p, s);
      default: return launch<T, dim.value, 2, true>(p, s);
    }
  });
}

}  // namespace gsa::kernels::detail
