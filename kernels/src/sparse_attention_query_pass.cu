// The query-block pass of block-sparse GSA attention: one CTA per (query block of kBlockRows rows, KV head),
// walking the block's key-tile list with K/V tiles double-buffered through cp.async and the tiles' plan metadata
// (rows, mask fields, class, list entry) fetched two tiles ahead, so no tile starts by waiting on the plan.
//   forward: 4 warps x 32 rows (two m16 row blocks per warp, so every K/V fragment feeds two MMAs):
//            S = Q K^T, mask, online softmax in fp32 (exp2 domain), O += P V; writes out and lse.
//   dq:      8 warps x 16 rows: S = Q K^T, P = exp2(S - lse), dP = dO V^T, dS = P (dP - delta), dQ += dS K.
// The mask is evaluated only for list entries without kFullTile, from struct-of-arrays metadata in shared
// memory and the key tile's class (gist_mask_allows_class). Shared memory (D = 128): Q (+ dO) 32 (64) KiB,
// K and V 2 x 2 x 16 KiB, metadata ~3 KiB.
#include <cuda_runtime.h>

#include <cmath>

#include "dispatch.cuh"
#include "sparse_attention_device.cuh"
#include "sparse_attention_launch.h"

namespace gsa::kernels {
namespace detail {
namespace {

template <bool kDq>
struct QueryPassShape {
  static constexpr int kWarps = kDq ? 8 : 4;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kM = kBlockRows / (16 * kWarps);  // m16 row blocks per warp
};

// Key-tile metadata stages: tile i's (in use), i + 1's (landed) and i + 2's (in flight).
constexpr int kMetaStages = 3;

template <int D, bool kDq>
struct QueryPassSmem {
  static constexpr int kQ = kBlockRows * D;                   // elements
  static constexpr int kDo = kDq ? kBlockRows * D : 0;
  static constexpr int kKv = 2 * kTileKeys * D;               // two stages
  static constexpr int kElems = kQ + kDo + 2 * kKv;
  static size_t bytes(size_t elem_size) {
    return kElems * elem_size + sizeof(QueryMetaSmem<kBlockRows>) + 2 * kBlockRows * sizeof(float) +
           kMetaStages * sizeof(KeyMetaSmem) + 2 * kMetaStages * sizeof(int32_t);
  }
};

template <typename T, int D, bool kDq>
__global__ void __launch_bounds__(QueryPassShape<kDq>::kThreads)
    query_pass_kernel(const __grid_constant__ SparseAttentionParams p) {
  using Smem = QueryPassSmem<D, kDq>;
  using Shape = QueryPassShape<kDq>;
  constexpr int kM = Shape::kM, kThreadsCount = Shape::kThreads;
  constexpr int kKeyStep = (D == 128 && !kDq) ? 32 : 64;  // keys per score step
  extern __shared__ __align__(16) unsigned char smem[];
  T* s_q = reinterpret_cast<T*>(smem);
  T* s_do = s_q + Smem::kQ;
  T* s_k = s_do + Smem::kDo;
  T* s_v = s_k + Smem::kKv;
  auto& s_qmeta = *reinterpret_cast<QueryMetaSmem<kBlockRows>*>(s_v + Smem::kKv);
  float* s_lse2 = reinterpret_cast<float*>(&s_qmeta + 1);
  float* s_delta = s_lse2 + kBlockRows;
  KeyMetaSmem* s_kmeta = reinterpret_cast<KeyMetaSmem*>(s_delta + kBlockRows);  // kMetaStages stages
  int32_t* s_entry = reinterpret_cast<int32_t*>(s_kmeta + kMetaStages);            // [stage] list entry
  int32_t* s_class = s_entry + kMetaStages;                                          // [stage] key tile class

  const int block = blockIdx.x, kv_head = blockIdx.y;
  const int b = p.plan.query_block_row[block], start = p.plan.query_block_start[block];
  const int group = p.q_heads / p.kv_heads;
  const int row_end = p.row_query_end[b];
  const int64_t q_batch = int64_t(b) * p.q_stride[0];
  const int64_t kv_base = int64_t(b) * p.kv_stride[0] + int64_t(kv_head) * p.kv_stride[1];
  const T* k = static_cast<const T*>(p.k) + kv_base;
  const T* v = static_cast<const T*>(p.v) + kv_base;

  auto q_offset = [&](int r) {
    return query_row_offset(p, q_batch, kv_head, group, row_end, query_row<kBlockRows>(r, group, start));
  };
  auto stat_index = [&](int r) {
    return query_stat_index(p, b, kv_head, group, query_row<kBlockRows>(r, group, start));
  };
  load_rows_async<D, kBlockRows, kThreadsCount, kDq>(s_q, static_cast<const T*>(p.q), s_do,
                                                    static_cast<const T*>(p.d_out), q_offset);
  if constexpr (kDq) {
    if (threadIdx.x < kBlockRows) {
      const int r = threadIdx.x;
      const bool valid = q_offset(r) >= 0;
      const float lse = valid ? p.lse[stat_index(r)] : 0.f;
      s_lse2[r] = isfinite(lse) ? lse * kLog2e : 0.f;  // a row without keys: every score is masked
      s_delta[r] = valid ? p.delta[stat_index(r)] : 0.f;
    }
  }
  load_query_meta<kBlockRows>(s_qmeta, p, b, start, threadIdx.x);

  const int first = p.plan.forward_offsets[block];
  const int count = p.plan.forward_offsets[block + 1] - first;
  const int32_t block_flags = p.plan.query_block_flags[block];
  // The pipeline (nothing waits on the plan at a tile's start): while tile i is computed, tile i + 1's K/V rows
  // and tile i + 2's metadata are in flight (cp.async), and tile i + 3's list entry is loaded into a register.
  auto issue_meta = [&](int i, int32_t entry) {  // tile i's metadata, entry and class into stage i % kMetaStages
    const int kt = entry & kTileIdMask, stage = i % kMetaStages;
    load_key_meta_async(s_kmeta[stage], p, kt);
    if (threadIdx.x == kThreadsCount - 1) {
      s_entry[stage] = entry;
      cp_async_4(s_class + stage, p.plan.key_tile_class + kt);
    }
  };
  auto issue_kv = [&](int i) {  // tile i's K and V rows (from its landed metadata) into stage i & 1
    const KeyMetaSmem& meta = s_kmeta[i % kMetaStages];
    auto kv_offset = [&](int c) -> int64_t {
      const int32_t row = meta.row[c];
      return row < 0 ? -1 : int64_t(row) * p.kv_stride[2];
    };
    const int stage = i & 1;
    load_rows_async<D, kTileKeys, kThreadsCount, true>(s_k + stage * kTileKeys * D, k, s_v + stage * kTileKeys * D, v,
                                                       kv_offset);
  };
  int32_t entry_ahead = count > 2 ? p.plan.forward_key_tiles[first + 2] : 0;  // tile 2's, then i + 3's
  if (count > 0) issue_meta(0, p.plan.forward_key_tiles[first]);
  if (count > 1) issue_meta(1, p.plan.forward_key_tiles[first + 1]);
  cp_async_commit();  // with Q (and dO)
  cp_async_wait<0>();
  __syncthreads();
  if (count > 0) issue_kv(0);
  cp_async_commit();

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int warp_row = warp * 16 * kM;
  const float scale2 = p.scale * kLog2e;

  float acc[kM][D / 8][4];  // O (forward) or dQ
#pragma unroll
  for (int m = 0; m < kM; ++m)
#pragma unroll
    for (int j = 0; j < D / 8; ++j) acc[m][j][0] = acc[m][j][1] = acc[m][j][2] = acc[m][j][3] = 0.f;
  float row_max[kM][2], row_sum[kM][2];
#pragma unroll
  for (int m = 0; m < kM; ++m) row_max[m][0] = row_max[m][1] = -INFINITY, row_sum[m][0] = row_sum[m][1] = 0.f;

  for (int i = 0; i < count; ++i) {
    cp_async_wait<0>();  // tile i's K/V and tile i + 1's metadata
    __syncthreads();     // ... for every thread; and every warp is done with tile i - 1's stages
    if (i + 1 < count) issue_kv(i + 1);
    if (i + 2 < count) issue_meta(i + 2, entry_ahead);
    if (i + 3 < count) entry_ahead = p.plan.forward_key_tiles[first + i + 3];
    cp_async_commit();
    const int stage = i & 1, meta_stage = i % kMetaStages;
    const T* k_tile = s_k + stage * kTileKeys * D;
    const T* v_tile = s_v + stage * kTileKeys * D;
    const int32_t entry = s_entry[meta_stage];
    const int key_class = s_class[meta_stage];

    const bool full = tile_taken_whole(entry & kFullTile, key_class, block_flags, p.rule);
    // The tile's keys in steps of kKeyStep (fewer live score registers at D = 128).
#pragma unroll 1
    for (int step = 0; step < kTileKeys / kKeyStep; ++step) {
      const int key0 = step * kKeyStep;
      float s[kM][kKeyStep / 8][4];
#pragma unroll
      for (int m = 0; m < kM; ++m)
#pragma unroll
        for (int n = 0; n < kKeyStep / 8; ++n) s[m][n][0] = s[m][n][1] = s[m][n][2] = s[m][n][3] = 0.f;
      mma_rows_times_tile_t<D, kKeyStep, kM>(s, s_q, warp_row, k_tile + key0 * D);
      if (!full) {
#pragma unroll
        for (int m = 0; m < kM; ++m) {
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const MaskQuery q = mask_query(s_qmeta, warp_row + 16 * m + 8 * h + (lane >> 2), key_class, p.rule.levels);
#pragma unroll
            for (int n = 0; n < kKeyStep / 8; ++n) {
#pragma unroll
              for (int e = 0; e < 2; ++e) {
                const MaskKey key = mask_key(s_kmeta[meta_stage], key0 + 8 * n + 2 * (lane & 3) + e);
                if (!gist_mask_allows_class(key_class, q, key, p.rule)) s[m][n][2 * h + e] = -INFINITY;
              }
            }
          }
        }
      }

      if constexpr (!kDq) {
#pragma unroll
        for (int m = 0; m < kM; ++m) {
          float tile_max[2] = {row_max[m][0], row_max[m][1]};
#pragma unroll
          for (int n = 0; n < kKeyStep / 8; ++n) {
#pragma unroll
            for (int e = 0; e < 4; ++e) tile_max[e >> 1] = fmaxf(tile_max[e >> 1], s[m][n][e] * scale2);
          }
          float base[2], correction[2];
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(0xffffffffu, tile_max[h], 1));
            tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(0xffffffffu, tile_max[h], 2));
            base[h] = tile_max[h] == -INFINITY ? 0.f : tile_max[h];
            correction[h] = exp2f(row_max[m][h] - base[h]);
            row_max[m][h] = tile_max[h];
            row_sum[m][h] *= correction[h];
          }
#pragma unroll
          for (int n = 0; n < kKeyStep / 8; ++n) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              s[m][n][e] = exp2f(fmaf(s[m][n][e], scale2, -base[e >> 1]));
              row_sum[m][e >> 1] += s[m][n][e];
            }
          }
#pragma unroll
          for (int j = 0; j < D / 8; ++j) {
            acc[m][j][0] *= correction[0];
            acc[m][j][1] *= correction[0];
            acc[m][j][2] *= correction[1];
            acc[m][j][3] *= correction[1];
          }
        }
        mma_c_times_tile<D, kKeyStep, kM>(acc, s, v_tile + key0 * D);
      } else {
        float dp[kM][kKeyStep / 8][4];
#pragma unroll
        for (int m = 0; m < kM; ++m)
#pragma unroll
          for (int n = 0; n < kKeyStep / 8; ++n) dp[m][n][0] = dp[m][n][1] = dp[m][n][2] = dp[m][n][3] = 0.f;
        mma_rows_times_tile_t<D, kKeyStep, kM>(dp, s_do, warp_row, v_tile + key0 * D);
#pragma unroll
        for (int m = 0; m < kM; ++m) {
#pragma unroll
          for (int n = 0; n < kKeyStep / 8; ++n) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              const int r = warp_row + 16 * m + 8 * (e >> 1) + (lane >> 2);
              const float prob = exp2f(fmaf(s[m][n][e], scale2, -s_lse2[r]));  // masked: exp2(-inf) = 0
              dp[m][n][e] = prob * (dp[m][n][e] - s_delta[r]);
            }
          }
        }
        mma_c_times_tile<D, kKeyStep, kM>(acc, dp, k_tile + key0 * D);
      }
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // covers count == 0: the block's own loads

  T* dst = static_cast<T*>(kDq ? p.dq : p.out);
#pragma unroll
  for (int m = 0; m < kM; ++m) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float out_scale = p.scale;
      if constexpr (!kDq) {
        row_sum[m][h] += __shfl_xor_sync(0xffffffffu, row_sum[m][h], 1);
        row_sum[m][h] += __shfl_xor_sync(0xffffffffu, row_sum[m][h], 2);
        out_scale = row_sum[m][h] > 0.f ? 1.f / row_sum[m][h] : 0.f;
      }
      const int r = warp_row + 16 * m + 8 * h + (lane >> 2);
      const int64_t off = q_offset(r);
      if (off < 0) continue;
#pragma unroll
      for (int j = 0; j < D / 8; ++j) {
        const int col = 8 * j + 2 * (lane & 3);
        *reinterpret_cast<uint32_t*>(dst + off + col) =
            Pack2<T>::from(acc[m][j][2 * h] * out_scale, acc[m][j][2 * h + 1] * out_scale);
      }
      if constexpr (!kDq) {
        if ((lane & 3) == 0) {
          p.lse[stat_index(r)] = row_sum[m][h] > 0.f ? (row_max[m][h] + log2f(row_sum[m][h])) / kLog2e : -INFINITY;
        }
      }
    }
  }
}

template <typename T, int D, bool kDq>
Status launch(const SparseAttentionParams& p, cudaStream_t stream) {
  if (p.plan.num_query_blocks == 0) return Status::kOk;
  return launch_with_smem(query_pass_kernel<T, D, kDq>, dim3(p.plan.num_query_blocks, p.kv_heads),
                          QueryPassShape<kDq>::kThreads, QueryPassSmem<D, kDq>::bytes(sizeof(T)), stream, p);
}

template <bool kDq>
Status dispatch(const SparseAttentionParams& p, cudaStream_t stream) {
  return with_type_and_dim(p, [&](auto type, auto dim) {
    return launch<typename decltype(type)::type, dim.value, kDq>(p, stream);
  });
}

}  // namespace

Status launch_query_pass(const SparseAttentionParams& p, bool backward, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  return backward ? dispatch<true>(p, s) : dispatch<false>(p, s);
}

}  // namespace detail

Status sparse_attention_forward_cuda(const SparseAttentionParams& params, void* stream) {
  const Status status = detail::check_sparse_attention_params(params, /*backward=*/false);
  if (status != Status::kOk) return status;
  if (detail::forward_sm90_enabled()) return detail::launch_forward_sm90(params, stream);
  return detail::launch_query_pass(params, /*backward=*/false, stream);
}

}  // namespace gsa::kernels
