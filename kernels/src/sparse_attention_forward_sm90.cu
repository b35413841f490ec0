// The block-sparse GSA forward on Hopper: warp-specialised, wgmma. One CTA per (query block of kBlockRows rows,
// KV head), three warpgroups (the CTA, its producer and shared memory: query_block_sm90.cuh):
//   producer (warpgroup 0, 56 registers a thread): walks the block's key-tile list; for each tile it gathers the
//     K and V rows (the plan's key rows are not contiguous: gist tokens sit between raw tokens, so no TMA) and
//     the tile's mask metadata, list entry and class into one of kKeyStages shared-memory stages by cp.async, and
//     lets the stage's `full` mbarrier complete when its copies land;
//   two consumers (warpgroups 1 and 2, 64 query rows each, 224 registers a thread): per tile, S = Q K^T by wgmma
//     (Q and K from shared memory, m64n64), the mask where the list entry is not kFullTile, online softmax in
//     fp32 (exp2 domain), O += P V by wgmma (P from registers, V from shared memory), then release the stage
//     (`empty`). The schedules (consume) overlap these steps in different ways.
// Same contract, plan walk and results (up to summation order) as the mma.sync query pass
// (sparse_attention_query_pass.cu), which stays the kernel for other GPUs and for GSA_SM90_FORWARD=0.
// Shared memory (D = 128, 16-bit): Q 32 KiB, kKeyStages x (K 16 + V 16) KiB, metadata ~10 KiB; tiles in the
// 128-byte-swizzled layout of hopper.cuh.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "dispatch.cuh"
#include "sparse_attention_launch.h"
#include "query_block_sm90.cuh"

namespace gsa::kernels::detail {
namespace {

// A schedule (GSA_SM90_FORWARD = 1, 2, 3, 6, 7) of the consumers:
//   1: each tile's S, softmax and P V in sequence;
//   2: a tile's S and softmax run while the tensor cores add the previous tile's P V (FlashAttention-3's
//      intra-warpgroup overlap);
//   3: 2, and the two consumer warpgroups take turns issuing their wgmmas, so one's softmax runs while the
//      other's products do (FlashAttention-3's ping-pong);
//   6: 3 with fewer CUDA-core instructions per score: the tile maximum over the raw scores, scaled once, and O
//      rescaled only when a row's maximum moved;
//   7: 6 with each row's maximum and sum over the tile reduced as balanced trees (dependency depth 4 instead of
//      chains of 15: Nsight Compute at 32K charged 29% of the warps' cycles to fixed-latency dependencies and
//      found the tensor pipe 34% busy); the default. 1.6-3% faster than 6 (A/B in one call, 2026-12-03).
// On the H200 (2026-12-03, 32 / 8 heads, D 128, bf16, forward ms at 8K / 32K / 128K tokens, one device call):
// 2: 0.366 / 2.51 / 28.5, 3: 0.369 / 2.45 / 27.6. Steps of 128 keys (two list tiles, m64n128 products;
// schedules 4 and 5 of that call, removed since) took 0.45-0.47 / 3.05-3.29 / 34.4-38.0. After the mask bits
// and exp2_approx (ninth session): 3: 0.333 / 2.25 / 25.5, 6: 0.332 / 2.20 / 24.5.
template <int kSchedule>
struct Schedule {
  static constexpr bool kOverlap = kSchedule >= 2;
  static constexpr bool kPingPong = kSchedule == 3 || kSchedule >= 6;
  static constexpr bool kLean = kSchedule >= 6;
  static constexpr bool kTrees = kSchedule == 7;
  static_assert(kOverlap || !kPingPong, "the ping-pong hands turns over between overlapped steps");
  static_assert(!kTrees || kLean, "the tree maximum is over the raw scores");
};

// Row h's 16 scores of a consumer thread's tile (s[4 q + 2 h + e], hopper.cuh's layout) reduced by op as a
// balanced tree.
template <typename Op>
__device__ __forceinline__ float reduce_row_tree(const float (&s)[32], int h, Op op) {
  float x[8];
#pragma unroll
  for (int q = 0; q < 8; ++q) x[q] = op(s[4 * q + 2 * h], s[4 * q + 2 * h + 1]);
#pragma unroll
  for (int q = 0; q < 4; ++q) x[q] = op(x[q], x[q + 4]);
  return op(op(x[0], x[2]), op(x[1], x[3]));
}

// Consumer thread ct (of kConsumerThreads) of the block's `count` key tiles.
template <typename T, int D, int kSchedule>
__device__ __forceinline__ void consume(const SparseAttentionParams& p, const QueryBlock& blk, int ct) {
  unsigned char* smem = blk.smem;
  QueryBlockControl& c = blk.c;
  const QueryBlockRows& rows = blk.rows;
  const int count = blk.count;
  using Smem = QueryBlockSmem<D, false>;
  using S = Schedule<kSchedule>;
  constexpr int kStages = kKeyStages;
  const int wg = ct / kWarpgroupThreads, warp = (ct % kWarpgroupThreads) / 32, lane = ct & 31;
  load_query_block<T, D, false>(p, smem, c, rows, ct);

  const int32_t block_flags = p.plan.query_block_flags[blk.block];
  const float scale2 = p.scale * kLog2e;
  const uint32_t q_addr = smem_addr(smem + Smem::kQ) + wg * 64 * 128;  // this warpgroup's 64 rows
  const int row_base = wg * 64 + warp * 16 + (lane >> 2);              // + 8 h: this thread's two rows

  float o[D / 2];            // O: m64 x D accumulator (hopper.cuh layout)
  float s[kTileKeys / 2];        // S, then P: m64 x 64 keys
  uint32_t a[kTileKeys / 16][4];  // P as the register A operand of O += P V (k-step kk = keys 16 kk .. 16 kk + 15)
#pragma unroll
  for (int j = 0; j < D / 2; ++j) o[j] = 0.f;
#pragma unroll
  for (int j = 0; j < kTileKeys / 2; ++j) s[j] = 0.f;
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.f, 0.f};
  const uint32_t k_base = smem_addr(smem + Smem::kK), v_base = smem_addr(smem + Smem::kV);

  auto wait_full = [&](int i) { mbarrier_wait(smem_addr(&c.full[i % kStages]), (i / kStages) & 1); };
  // Issues S = Q K^T for tile i.
  auto issue_scores = [&](int i) {
    wgmma_fence();
    wgmma_rows_times_tile_t<T, D, kBlockRows>(s, q_addr, k_base + (i % kStages) * Smem::kStageBytes);
    wgmma_commit();
  };
  // Issues O += P V for tile i from the A registers.
  auto issue_pv = [&](int i) {
    const uint32_t v_addr = v_base + (i % kStages) * Smem::kStageBytes;
    fence_registers(o);
    wgmma_fence();
    wgmma_regs_times_tile<T, D>(o, a, v_addr);
    wgmma_commit();
  };
  auto release = [&](int i) { mbarrier_arrive(smem_addr(&c.empty[i % kStages])); };
  // Tile i's scores (landed in s): the mask, the online softmax (row_max, row_sum; s becomes P), and the factor
  // O must be scaled by before P V is added.
  auto softmax = [&](int i, float (&correction)[2]) {
    const int stage = i % kStages;
    const uint32_t allowed = tile_allowed_bits(p, c.query_meta, c.key_meta[stage], c.entry[stage],
                                               c.key_class[stage], block_flags, row_base, lane);
    if (allowed != ~0u) {
#pragma unroll
      for (int j = 0; j < kTileKeys / 2; ++j) s[j] = (allowed >> j) & 1u ? s[j] : -INFINITY;
    }
    // Rows g and g + 8 of the warp; a row's 64 scores sit on 4 lanes. Lean: the maximum of the raw scores,
    // scaled once (x -> x * scale2 is monotone, so the result is the same float).
    float tile_max[2] = {row_max[0], row_max[1]};
    if constexpr (S::kLean) tile_max[0] = tile_max[1] = -INFINITY;
    if constexpr (S::kTrees) {
#pragma unroll
      for (int h = 0; h < 2; ++h) tile_max[h] = reduce_row_tree(s, h, [](float a, float b) { return fmaxf(a, b); });
    } else {
#pragma unroll
      for (int j = 0; j < kTileKeys / 2; ++j) {
        tile_max[(j >> 1) & 1] = fmaxf(tile_max[(j >> 1) & 1], S::kLean ? s[j] : s[j] * scale2);
      }
    }
    float base[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(0xffffffffu, tile_max[h], 1));
      tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(0xffffffffu, tile_max[h], 2));
      if constexpr (S::kLean) tile_max[h] = fmaxf(row_max[h], tile_max[h] * scale2);
      base[h] = tile_max[h] == -INFINITY ? 0.f : tile_max[h];
      correction[h] = row_max[h] == base[h] ? 1.f : exp2_approx(row_max[h] - base[h]);  // exactly 1: no rescale
      row_max[h] = tile_max[h];
      row_sum[h] *= correction[h];
    }
#pragma unroll
    for (int j = 0; j < kTileKeys / 2; ++j) {
      s[j] = exp2_approx(fmaf(s[j], scale2, -base[(j >> 1) & 1]));
      if constexpr (!S::kTrees) row_sum[(j >> 1) & 1] += s[j];
    }
    if constexpr (S::kTrees) {
#pragma unroll
      for (int h = 0; h < 2; ++h) row_sum[h] += reduce_row_tree(s, h, [](float a, float b) { return a + b; });
    }
  };
  auto rescale_and_pack = [&](const float (&correction)[2]) {
    // Lean: skipped while no row of the warp has a new maximum (correction exactly 1), most tiles of a long list.
    if (!S::kLean || __any_sync(0xffffffffu, correction[0] != 1.f || correction[1] != 1.f)) {
#pragma unroll
      for (int j = 0; j < D / 2; ++j) o[j] *= correction[(j >> 1) & 1];
    }
#pragma unroll
    for (int kk = 0; kk < kTileKeys / 16; ++kk) {
#pragma unroll
      for (int r = 0; r < 4; ++r) a[kk][r] = Pack2<T>::from(s[8 * kk + 2 * r], s[8 * kk + 2 * r + 1]);
    }
  };
  // Ping-pong: warpgroup w waits for its turn before issuing a tile's wgmmas and hands the turn over after;
  // warpgroup 1 opens with a handover so warpgroup 0 goes first, and skips its last one (every arrival is synced).
  auto take_turn = [&] {
    if constexpr (S::kPingPong) named_barrier_sync(kTurnBarrier + wg, kConsumerThreads);
  };
  auto hand_over = [&](bool last) {
    if constexpr (S::kPingPong) {
      if (!(wg == 1 && last)) named_barrier_arrive(kTurnBarrier + 1 - wg, kConsumerThreads);
    }
  };
  if (S::kPingPong && wg == 1 && count > 0) named_barrier_arrive(kTurnBarrier, kConsumerThreads);

  float correction[2];
  if constexpr (!S::kOverlap) {
    for (int i = 0; i < count; ++i) {
      wait_full(i);
      issue_scores(i);
      wgmma_wait<0>();
      fence_registers(s);
      softmax(i, correction);
      rescale_and_pack(correction);
      issue_pv(i);
      wgmma_wait<0>();
      fence_registers(o);
      release(i);
    }
  } else if (count > 0) {
    // S_i is issued before P_{i-1} V_{i-1}, waited for alone, and its softmax done before the P V is waited for.
    wait_full(0);
    take_turn();
    issue_scores(0);
    hand_over(count == 1);
    wgmma_wait<0>();
    fence_registers(s);
    softmax(0, correction);
    rescale_and_pack(correction);
    for (int i = 1; i < count; ++i) {
      wait_full(i);
      take_turn();
      issue_scores(i);
      issue_pv(i - 1);
      hand_over(i == count - 1);
      wgmma_wait<1>();  // S_i (the older group) has landed; P_{i-1} V_{i-1} may still run
      fence_registers(s);
      softmax(i, correction);
      wgmma_wait<0>();
      fence_registers(o);
      release(i - 1);
      rescale_and_pack(correction);
    }
    issue_pv(count - 1);
    wgmma_wait<0>();
    fence_registers(o);
    release(count - 1);
  }

  float out_scale[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    row_sum[h] += __shfl_xor_sync(0xffffffffu, row_sum[h], 1);
    row_sum[h] += __shfl_xor_sync(0xffffffffu, row_sum[h], 2);
    out_scale[h] = row_sum[h] > 0.f ? 1.f / row_sum[h] : 0.f;
    const int r = row_base + 8 * h;
    if ((lane & 3) == 0 && rows.offset(r) >= 0) {
      p.lse[rows.stat(r)] = row_sum[h] > 0.f ? (row_max[h] + log2f(row_sum[h])) / kLog2e : -INFINITY;
    }
  }
  write_query_rows<T, D>(static_cast<T*>(p.out), rows, o, out_scale, row_base, lane);
}

template <typename T, int D, int kSchedule>
__global__ void __launch_bounds__(kQueryBlockThreads, 1)
    forward_sm90_kernel(const __grid_constant__ SparseAttentionParams p) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)  // wgmma and setmaxnreg: sm_90a only
  run_query_block<T, D, false>(p, [&](const QueryBlock& blk, int ct) { consume<T, D, kSchedule>(p, blk, ct); });
#else
  __trap();  // not built for sm_90a: forward_sm90_enabled() is false in such a build
#endif
}

// GSA_SM90_FORWARD (read once): 0 = the mma.sync query pass, 1, 2, 3, 6, 7 = this kernel's schedules (Schedule), 7
// the default (also for any other value).
int forward_sm90_schedule() {
  static const int schedule = env_int("GSA_SM90_FORWARD", 7);
  return schedule;
}

template <typename T, int D, int kSchedule>
Status launch_schedule(const SparseAttentionParams& p, cudaStream_t stream) {
  return launch_with_smem(forward_sm90_kernel<T, D, kSchedule>, dim3(p.plan.num_query_blocks, p.kv_heads),
                          kQueryBlockThreads, QueryBlockSmem<D, false>::kBytes, stream, p);
}

template <typename T, int D>
Status launch(const SparseAttentionParams& p, cudaStream_t stream) {
  if (p.plan.num_query_blocks == 0) return Status::kOk;
  switch (forward_sm90_schedule()) {
    case 1:
      return launch_schedule<T, D, 1>(p, stream);
    case 2:
      return launch_schedule<T, D, 2>(p, stream);
    case 3:
      return launch_schedule<T, D, 3>(p, stream);
    case 6:
      return launch_schedule<T, D, 6>(p, stream);
    default:  // 7, and any value not listed
      return launch_schedule<T, D, 7>(p, stream);
  }
}

}  // namespace

bool hopper_kernels_available() {
#ifdef GSA_NO_SM90A
  return false;
#endif
  static const bool available = [] {
    int device = 0, major = 0, minor = 0;
    if (cudaGetDevice(&device) != cudaSuccess) return false;
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
    cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
    return major == 9 && minor == 0;
  }();
  return available;
}

bool forward_sm90_enabled() { return forward_sm90_schedule() != 0 && hopper_kernels_available(); }

Status launch_forward_sm90(const SparseAttentionParams& p, void* stream) {
  return with_type_and_dim(p, [&](auto type, auto dim) {
    return launch<typename decltype(type)::type, dim.value>(p, static_cast<cudaStream_t>(stream));
  });
}

}  // namespace gsa::kernels::detail
