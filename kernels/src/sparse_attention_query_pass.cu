// The query-tile pass of block-sparse GSA attention: one CTA per (query tile, KV head), 4 warps of 16 query
// rows, walking the tile's key-tile list with K/V tiles double-buffered through cp.async.
//   forward: S = Q K^T, mask, online softmax in fp32 (exp2 domain), O += P V; writes out and lse.
//   dq:      S = Q K^T, P = exp2(S - lse), dP = dO V^T, dS = P (dP - delta), dQ += dS K; writes dq.
// Shared memory per CTA (D = 128): Q (+ dO) 16 (32) KiB, K and V 2 x 2 x 16 KiB, metadata ~7 KiB.
#include <cuda_runtime.h>

#include <cmath>

#include "sparse_attention_device.cuh"
#include "sparse_attention_launch.h"

namespace gsa::kernels {
namespace detail {
namespace {

template <int D, bool kDq>
struct QueryPassSmem {
  static constexpr int kQ = kTileRows * D;                   // elements
  static constexpr int kDo = kDq ? kTileRows * D : 0;
  static constexpr int kKv = 2 * kTileKeys * D;              // two stages
  static constexpr int kElems = kQ + kDo + 2 * kKv;
  static constexpr int kInts = kTileRows * (1 + kTokenMetaInts) + 2 * kTileRows  // q pos, meta, row stats
                               + 2 * kTileKeys * (1 + kTokenMetaInts);            // k pos, meta (two stages)
  static size_t bytes(size_t elem_size) { return kElems * elem_size + kInts * sizeof(int32_t); }
};

template <typename T, int D, bool kDq>
__global__ void __launch_bounds__(kThreads) query_pass_kernel(const __grid_constant__ SparseAttentionParams p) {
  using Smem = QueryPassSmem<D, kDq>;
  extern __shared__ __align__(16) unsigned char smem[];
  T* s_q = reinterpret_cast<T*>(smem);
  T* s_do = s_q + Smem::kQ;
  T* s_k = s_do + Smem::kDo;
  T* s_v = s_k + Smem::kKv;
  int32_t* s_qpos = reinterpret_cast<int32_t*>(s_v + Smem::kKv);
  int32_t* s_qmeta = s_qpos + kTileRows;
  float* s_lse2 = reinterpret_cast<float*>(s_qmeta + kTileRows * kTokenMetaInts);
  float* s_delta = s_lse2 + kTileRows;
  int32_t* s_kpos = reinterpret_cast<int32_t*>(s_delta + kTileRows);
  int32_t* s_kmeta = s_kpos + 2 * kTileKeys;

  const int tile = blockIdx.x, kv_head = blockIdx.y;
  const int b = p.plan.query_tile_row[tile], start = p.plan.query_tile_start[tile];
  const int group = p.q_heads / p.kv_heads;
  const int row_end = p.row_query_end[b];
  const int64_t q_batch = int64_t(b) * p.q_stride[0];
  const int64_t kv_base = int64_t(b) * p.kv_stride[0] + int64_t(kv_head) * p.kv_stride[1];
  const T* k = static_cast<const T*>(p.k) + kv_base;
  const T* v = static_cast<const T*>(p.v) + kv_base;

  auto q_offset = [&](int r) -> int64_t {
    const QueryRow qr = query_row(r, group, start);
    if (qr.pos >= row_end) return -1;
    return q_batch + int64_t(kv_head * group + qr.head) * p.q_stride[1] + int64_t(qr.pos - p.q_begin) * p.q_stride[2];
  };
  load_rows_async<D, kTileRows>(s_q, static_cast<const T*>(p.q), q_offset);
  if constexpr (kDq) {
    load_rows_async<D, kTileRows>(s_do, static_cast<const T*>(p.d_out), q_offset);
    if (threadIdx.x < kTileRows) {
      const int r = threadIdx.x;
      const QueryRow qr = query_row(r, group, start);
      const bool valid = qr.pos < row_end;
      const int64_t stat = ((int64_t(b) * p.q_heads + kv_head * group + qr.head) * p.num_queries) + (qr.pos - p.q_begin);
      s_lse2[r] = valid ? p.lse[stat] * kLog2e : 0.f;
      s_delta[r] = valid ? p.delta[stat] : 0.f;
    }
  }
  load_query_meta(s_qpos, s_qmeta, p, b, start);

  const int first = p.plan.forward_offsets[tile];
  const int count = p.plan.forward_offsets[tile + 1] - first;
  auto load_key_tile = [&](int i, int stage) {
    const int kt = p.plan.forward_key_tiles[first + i] & kTileIdMask;
    const int32_t* positions = p.plan.key_tile_positions + int64_t(kt) * kTileKeys;
    auto kv_offset = [&](int c) -> int64_t {
      const int32_t pos = positions[c];
      return pos < 0 ? -1 : int64_t(pos) * p.kv_stride[2];
    };
    load_rows_async<D, kTileKeys>(s_k + stage * kTileKeys * D, k, kv_offset);
    load_rows_async<D, kTileKeys>(s_v + stage * kTileKeys * D, v, kv_offset);
    load_key_meta(s_kpos + stage * kTileKeys, s_kmeta + stage * kTileKeys * kTokenMetaInts, p, b, kt);
  };
  if (count > 0) load_key_tile(0, 0);
  cp_async_commit();

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int rows[2] = {warp * 16 + (lane >> 2), warp * 16 + (lane >> 2) + 8};
  const float scale2 = p.scale * kLog2e;
  const bool suffix_sees_no_gists = p.rule.selective && !p.rule.keep_unselected_gists &&
                                    (p.plan.query_tile_flags[tile] & kSuffixFlag);

  float acc[D / 8][4];  // O (forward) or dQ
#pragma unroll
  for (int j = 0; j < D / 8; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.f, 0.f};

  for (int i = 0; i < count; ++i) {
    const int stage = i & 1;
    if (i + 1 < count) load_key_tile(i + 1, stage ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const T* k_tile = s_k + stage * kTileKeys * D;
    const T* v_tile = s_v + stage * kTileKeys * D;
    const int32_t* k_pos = s_kpos + stage * kTileKeys;
    const int32_t* k_meta = s_kmeta + stage * kTileKeys * kTokenMetaInts;
    const bool full = (p.plan.forward_key_tiles[first + i] & kFullTile) && !suffix_sees_no_gists;

    float s[kTileKeys / 8][4];
#pragma unroll
    for (int n = 0; n < kTileKeys / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
    mma_rows_times_tile_t<D, kTileKeys>(s, s_q, warp * 16, k_tile);
#pragma unroll
    for (int n = 0; n < kTileKeys / 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int c = 8 * n + 2 * (lane & 3) + (e & 1);
        const bool ok = full || allowed_at(s_qpos, s_qmeta, rows[e >> 1], k_pos, k_meta, c, p.rule);
        s[n][e] = ok ? s[n][e] * scale2 : -INFINITY;
      }
    }

    if constexpr (!kDq) {
      float tile_max[2] = {row_max[0], row_max[1]};
#pragma unroll
      for (int n = 0; n < kTileKeys / 8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) tile_max[e >> 1] = fmaxf(tile_max[e >> 1], s[n][e]);
      }
      float base[2], correction[2];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(0xffffffffu, tile_max[h], 1));
        tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(0xffffffffu, tile_max[h], 2));
        base[h] = tile_max[h] == -INFINITY ? 0.f : tile_max[h];
        correction[h] = exp2f(row_max[h] - base[h]);
        row_max[h] = tile_max[h];
        row_sum[h] *= correction[h];
      }
#pragma unroll
      for (int n = 0; n < kTileKeys / 8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[n][e] = exp2f(s[n][e] - base[e >> 1]);
          row_sum[e >> 1] += s[n][e];
        }
      }
#pragma unroll
      for (int j = 0; j < D / 8; ++j) {
        acc[j][0] *= correction[0];
        acc[j][1] *= correction[0];
        acc[j][2] *= correction[1];
        acc[j][3] *= correction[1];
      }
      mma_c_times_tile<D, kTileKeys>(acc, s, v_tile);
    } else {
      float dp[kTileKeys / 8][4];
#pragma unroll
      for (int n = 0; n < kTileKeys / 8; ++n) dp[n][0] = dp[n][1] = dp[n][2] = dp[n][3] = 0.f;
      mma_rows_times_tile_t<D, kTileKeys>(dp, s_do, warp * 16, v_tile);
#pragma unroll
      for (int n = 0; n < kTileKeys / 8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int r = rows[e >> 1];
          const float prob = s[n][e] == -INFINITY ? 0.f : exp2f(s[n][e] - s_lse2[r]);
          dp[n][e] = s[n][e] == -INFINITY ? 0.f : prob * (dp[n][e] - s_delta[r]);
        }
      }
      mma_c_times_tile<D, kTileKeys>(acc, dp, k_tile);
    }
    __syncthreads();
  }
  cp_async_wait<0>();
  __syncthreads();  // covers count == 0: the query tile's own loads

  // Epilogue: rows r0 (acc[.][0..1]) and r0 + 8 (acc[.][2..3]).
  float out_scale[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    if constexpr (!kDq) {
      row_sum[h] += __shfl_xor_sync(0xffffffffu, row_sum[h], 1);
      row_sum[h] += __shfl_xor_sync(0xffffffffu, row_sum[h], 2);
      out_scale[h] = row_sum[h] > 0.f ? 1.f / row_sum[h] : 0.f;
    } else {
      out_scale[h] = p.scale;
    }
  }
  T* dst = static_cast<T*>(kDq ? p.dq : p.out);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = rows[h];
    const int64_t off = q_offset(r);
    if (off < 0) continue;
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      const int col = 8 * j + 2 * (lane & 3);
      *reinterpret_cast<uint32_t*>(dst + off + col) =
          Pack2<T>::from(acc[j][2 * h] * out_scale[h], acc[j][2 * h + 1] * out_scale[h]);
    }
    if constexpr (!kDq) {
      if ((lane & 3) == 0) {
        const QueryRow qr = query_row(r, group, start);
        const int64_t stat = ((int64_t(b) * p.q_heads + kv_head * group + qr.head) * p.num_queries) + (qr.pos - p.q_begin);
        p.lse[stat] = row_sum[h] > 0.f ? (row_max[h] + log2f(row_sum[h])) / kLog2e : -INFINITY;
      }
    }
  }
}

template <typename T, int D, bool kDq>
Status launch(const SparseAttentionParams& p, cudaStream_t stream) {
  if (p.plan.num_query_tiles == 0) return Status::kOk;
  const size_t smem = QueryPassSmem<D, kDq>::bytes(sizeof(T));
  auto kernel = query_pass_kernel<T, D, kDq>;
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)) != cudaSuccess) {
    return Status::kCudaError;
  }
  const dim3 grid(p.plan.num_query_tiles, p.kv_heads);
  kernel<<<grid, kThreads, smem, stream>>>(p);
  return cudaGetLastError() == cudaSuccess ? Status::kOk : Status::kCudaError;
}

template <bool kDq>
Status dispatch(const SparseAttentionParams& p, cudaStream_t stream) {
  const bool bf16 = p.dtype == DType::kBFloat16;
  if (p.head_dim == 64) return bf16 ? launch<__nv_bfloat16, 64, kDq>(p, stream) : launch<__half, 64, kDq>(p, stream);
  if (p.head_dim == 128) return bf16 ? launch<__nv_bfloat16, 128, kDq>(p, stream) : launch<__half, 128, kDq>(p, stream);
  return Status::kInvalidArgument;
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
  return detail::launch_query_pass(params, /*backward=*/false, stream);
}

}  // namespace gsa::kernels
