// The dq pass of the block-sparse GSA backward on Hopper (wgmma): the CTA of the forward (query_block_sm90.cuh:
// one per query block of kBlockRows rows and KV head, a producer warpgroup gathering the block's key tiles, two
// consumer warpgroups of 64 query rows), with the block's dO rows next to its Q rows. Per key tile a consumer
// issues S = Q K^T and dP = dO V^T (wgmma, both operands from shared memory, m64n64), applies the mask
// (tile_allowed_bits), forms P = exp2(S scale log2(e) - lse log2(e)) and dS = P (dP - delta) in fp32, and adds
// dQ += dS K (wgmma, dS from registers, K as the MN-major operand as V is in the forward's P V). Each warpgroup
// runs its tiles in sequence; the two interleave on the tensor cores by themselves.
// Same contract as the mma.sync query pass's dq (sparse_attention_query_pass.cu): dq = scale * dS K as T, lse
// and delta (delta_kernel) read per row. Selected where hopper_kernels_available() unless GSA_SM90_DQ=0 (or =2 with a
// stored-dS workspace: sparse_attention_dq_ds_sm90.cu).
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "dispatch.cuh"
#include "query_block_sm90.cuh"
#include "sparse_attention_launch.h"

namespace gsa::kernels::detail {
namespace {

// Consumer thread ct (of kConsumerThreads) of the block's `count` key tiles.
template <typename T, int D>
__device__ __forceinline__ void consume_dq(const SparseAttentionParams& p, const QueryBlock& blk, int ct) {
  unsigned char* smem = blk.smem;
  QueryBlockControl& c = blk.c;
  const QueryBlockRows& rows = blk.rows;
  const int count = blk.count;
  using Smem = QueryBlockSmem<D, true>;
  const int wg = ct / kWarpgroupThreads, warp = (ct % kWarpgroupThreads) / 32, lane = ct & 31;
  load_query_block<T, D, true>(p, smem, c, rows, ct);

  const int32_t block_flags = p.plan.query_block_flags[blk.block];
  const float scale2 = p.scale * kLog2e;
  const int row_base = wg * 64 + warp * 16 + (lane >> 2);  // + 8 h: this thread's two rows
  float lse2[2], delta[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = row_base + 8 * h;
    const bool valid = rows.offset(r) >= 0;
    const float lse = valid ? p.lse[rows.stat(r)] : 0.f;
    lse2[h] = isfinite(lse) ? lse * kLog2e : 0.f;  // a row without keys: every score is masked
    delta[h] = valid ? p.delta[rows.stat(r)] : 0.f;
  }
  const uint32_t q_addr = smem_addr(smem + Smem::kQ) + wg * 64 * 128;  // this warpgroup's 64 rows
  const uint32_t do_addr = smem_addr(smem + Smem::kDo) + wg * 64 * 128;
  const uint32_t k_base = smem_addr(smem + Smem::kK), v_base = smem_addr(smem + Smem::kV);

  float dq[D / 2];  // m64 x D accumulator (hopper.cuh layout)
  float s[32];      // S, then P: m64 x 64 keys
  float dp[32];     // dP, then dS
  uint32_t a[4][4];  // dS as the register A operand of dQ += dS K (k-step kk = keys 16 kk .. 16 kk + 15)
#pragma unroll
  for (int j = 0; j < D / 2; ++j) dq[j] = 0.f;
#pragma unroll
  for (int j = 0; j < 32; ++j) s[j] = dp[j] = 0.f;

  for (int i = 0; i < count; ++i) {
    const int stage = i % kKeyStages;
    mbarrier_wait(smem_addr(&c.full[stage]), (i / kKeyStages) & 1);
    const uint32_t k_addr = k_base + stage * Smem::kStageBytes, v_addr = v_base + stage * Smem::kStageBytes;
    // S = Q K^T and dP = dO V^T.
    wgmma_fence();
    wgmma_rows_times_tile_t<T, D, kBlockRows>(s, q_addr, k_addr);
    wgmma_rows_times_tile_t<T, D, kBlockRows>(dp, do_addr, v_addr);
    wgmma_commit();
    wgmma_wait<0>();
    fence_registers(s);
    fence_registers(dp);

    const uint32_t allowed = tile_allowed_bits(p, c.query_meta, c.key_meta[stage], c.entry[stage],
                                               c.key_class[stage], block_flags, row_base, lane);
#pragma unroll
    for (int j = 0; j < 32; ++j) {
      const int h = (j >> 1) & 1;
      const float prob = (allowed >> j) & 1u ? exp2_approx(fmaf(s[j], scale2, -lse2[h])) : 0.f;
      dp[j] = prob * (dp[j] - delta[h]);
    }
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
#pragma unroll
      for (int r = 0; r < 4; ++r) a[kk][r] = Pack2<T>::from(dp[8 * kk + 2 * r], dp[8 * kk + 2 * r + 1]);
    }
    fence_registers(dq);
    wgmma_fence();
    wgmma_regs_times_tile<T, D>(dq, a, k_addr);
    wgmma_commit();
    wgmma_wait<0>();
    fence_registers(dq);
    mbarrier_arrive(smem_addr(&c.empty[stage]));
  }
  const float scale[2] = {p.scale, p.scale};
  write_query_rows<T, D>(static_cast<T*>(p.dq), rows, dq, scale, row_base, lane);
}

template <typename T, int D>
__global__ void __launch_bounds__(kQueryBlockThreads, 1)
    dq_sm90_kernel(const __grid_constant__ SparseAttentionParams p) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)  // wgmma and setmaxnreg: sm_90a only
  run_query_block<T, D, true>(p, [&](const QueryBlock& blk, int ct) { consume_dq<T, D>(p, blk, ct); });
#else
  __trap();  // not built for sm_90a: dq_sm90_enabled() is false in such a build
#endif
}

template <typename T, int D>
Status launch(const SparseAttentionParams& p, cudaStream_t stream) {
  if (p.plan.num_query_blocks == 0) return Status::kOk;
  return launch_with_smem(dq_sm90_kernel<T, D>, dim3(p.plan.num_query_blocks, p.kv_heads), kQueryBlockThreads,
                          QueryBlockSmem<D, true>::kBytes, stream, p);
}

}  // namespace

// GSA_SM90_DQ (read once): 0 the mma.sync query pass; 1 this kernel; 2 the stored-dS pass where the Hopper key pass
// runs; unset (-1) the stored-dS pass for small plans, this kernel otherwise. This kernel runs wherever no ds
// workspace is given; other values read as 1.
int dq_sm90_mode() {
  static const int mode = env_int("GSA_SM90_DQ", -1);
  return mode;
}

bool dq_sm90_enabled() { return dq_sm90_mode() != 0 && hopper_kernels_available(); }

StoredDs dq_stored_ds_mode() {
  if (!key_pass_sm90_enabled()) return StoredDs::kNever;
  const int mode = dq_sm90_mode();
  return mode == -1 ? StoredDs::kSmallPlans : mode == 2 ? StoredDs::kAlways : StoredDs::kNever;
}

Status launch_dq_sm90(const SparseAttentionParams& p, void* stream) {
  return with_type_and_dim(p, [&](auto type, auto dim) {
    return launch<typename decltype(type)::type, dim.value>(p, static_cast<cudaStream_t>(stream));
  });
}

}  // namespace gsa::kernels::detail
