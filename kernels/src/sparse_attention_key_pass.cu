// The backward of block-sparse GSA attention:
//   1. delta[b, h, t] = sum_d d_out * out - d_lse          (one warp per query row)
//   2. without a dq workspace (or with the Hopper key pass): dq by the query-tile pass
//      (sparse_attention_query_pass.cu; on Hopper sparse_attention_dq_sm90.cu unless GSA_SM90_DQ=0)
//   3. the key-tile pass: one CTA per (backward item, KV head); warp w owns keys 16w..16w+15 of the item's key
//      tile and walks the item's query tiles (Q, dO and their row statistics double-buffered):
//        S^T = K Q^T, P^T = exp2(S^T - lse) (masked), dV += P^T dO, dP^T = V dO^T, dS^T = P^T (dP^T - delta),
//        dK += dS^T Q; with a dq workspace also dQ += dS K: dS goes to shared memory (query rows x keys), warp w
//        takes query rows 16w..16w+15 against the whole key tile, 32 columns at a time, and adds them to the fp32
//        workspace atomically; at the end dK * scale and dV go to the fp32 workspaces (plain stores when the key
//        tile has one item, atomic adds when several items share it)
//   4. the workspaces are converted to dk, dv (and dq) in the input dtype (one kernel each).
// Step 3 on Hopper: key_pass_sm90_kernel (sparse_attention_key_pass_sm90.cu) instead, unless GSA_SM90_BACKWARD=0.
#include <cuda_runtime.h>

#include <cmath>

#include "dispatch.cuh"
#include "sparse_attention_device.cuh"
#include "sparse_attention_launch.h"

namespace gsa::kernels {
namespace detail {
namespace {

// The elementwise kernels around the passes move 16 bytes a thread: D / 8 threads a row (8 values of 16 bits, or
// two float4 of the fp32 workspaces), rows in a grid-stride loop, so a row's index arithmetic is paid once per 8
// values (the one-pair-a-thread forms ran at ~2 TB/s of the H200's ~4.2; docs/PERFORMANCE.md).
template <int D>
struct RowLanes {
  static constexpr int kThreads = D / 8;
  static __device__ __forceinline__ int64_t first_row() {
    return (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kThreads;
  }
  static __device__ __forceinline__ int64_t row_step() { return (int64_t(gridDim.x) * blockDim.x) / kThreads; }
  static __device__ __forceinline__ int part() { return threadIdx.x % kThreads; }  // this thread's 8 columns
  // The lanes of this thread's row (its kThreads-aligned segment of the warp).
  static __device__ __forceinline__ unsigned mask() {
    return ((1u << kThreads) - 1u) << ((threadIdx.x & 31) & ~(kThreads - 1));
  }
};

template <typename T>
__device__ __forceinline__ float dot8(const uint4& a, const uint4& b) {
  const T* x = reinterpret_cast<const T*>(&a);
  const T* y = reinterpret_cast<const T*>(&b);
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < 8; ++i) sum = fmaf(float(x[i]), float(y[i]), sum);
  return sum;
}

template <typename T, int D>
__global__ void delta_kernel(const __grid_constant__ SparseAttentionParams p) {
  using Lanes = RowLanes<D>;
  const int64_t rows = int64_t(p.batch) * p.q_heads * p.num_queries;
  const int col = 8 * Lanes::part();
  for (int64_t row = Lanes::first_row(); row < rows; row += Lanes::row_step()) {
    const int64_t t = row % p.num_queries, bh = row / p.num_queries;
    const int64_t h = bh % p.q_heads, b = bh / p.q_heads;
    const int64_t off = b * p.q_stride[0] + h * p.q_stride[1] + t * p.q_stride[2] + col;
    const uint4 o = *reinterpret_cast<const uint4*>(static_cast<const T*>(p.out) + off);
    const uint4 g = *reinterpret_cast<const uint4*>(static_cast<const T*>(p.d_out) + off);
    float sum = dot8<T>(o, g);
#pragma unroll
    for (int s = Lanes::kThreads / 2; s > 0; s /= 2) sum += __shfl_xor_sync(Lanes::mask(), sum, s, Lanes::kThreads);
    if (col == 0) p.delta[row] = sum - (p.d_lse != nullptr ? p.d_lse[row] : 0.f);
  }
}

constexpr int kKeyPassThreads = 128;  // 4 warps of 16 keys

// A query tile as the key pass reads it, fetched ahead by cp.async (nothing waits on the plan at a tile's start):
// its list entry, start and flags two tiles ahead, its rows' token metadata, statistics, Q and dO one tile ahead.
// (Two row stages: at head dim 128 with the dS tile two CTAs still fit an SM.)
struct QueryTileInfo {
  int32_t entry, start, flags, pad;
};
struct QueryTileRows {
  int32_t meta[kTileRows * kTokenMetaInts];  // the tile's positions start .. start + rows / group - 1
  float lse[kTileRows];                      // per row (0 past the row's last query)
  float delta[kTileRows];
};
constexpr int kInfoStages = 3, kRowStages = 2;

template <int D, bool kFusedDq>
struct KeyPassSmem {
  static constexpr int kKv = kTileKeys * D;
  static constexpr int kQ = 2 * kTileRows * D;  // two stages
  static constexpr int kDs = kFusedDq ? kTileRows * kTileKeys : 0;
  static constexpr int kElems = 2 * kKv + 2 * kQ + kDs;
  static size_t bytes(size_t elem_size) {
    return kElems * elem_size + sizeof(KeyMetaSmem) + kRowStages * sizeof(QueryTileRows) +
           kInfoStages * sizeof(QueryTileInfo);
  }
};

// dQ += dS K for one query tile of the key pass (kFusedDq): this warp's dS^T fragments (its 16 keys x the tile's
// query rows) go to shared memory as query rows x keys, then warp w multiplies query rows 16w..16w+15 by the
// whole key tile, 32 columns at a time, and adds them to the fp32 workspace (dq_accum, scaled at conversion).
template <typename T, int D>
__device__ __forceinline__ void accumulate_dq(const SparseAttentionParams& p, const float (&ds)[1][kTileRows / 8][4],
                                              T* s_ds, const T* s_k, int start, int b, int kv_head, int row_end) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
#pragma unroll
  for (int n = 0; n < kTileRows / 8; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int key = warp * 16 + 8 * (e >> 1) + (lane >> 2), row = 8 * n + 2 * (lane & 3) + (e & 1);
      s_ds[swizzled<kTileKeys>(row, key >> 3) + (key & 7)] = T(ds[0][n][e]);
    }
  }
  __syncthreads();
  const int group = p.q_heads / p.kv_heads;
  int64_t row_base[2];  // the workspace offset of this lane's two query rows (-1: past the row's last query)
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const QueryRow qr = query_row<kTileRows>(warp * 16 + 8 * h + (lane >> 2), group, start);
    row_base[h] = qr.pos >= row_end ? -1
                                    : ((int64_t(b) * p.q_heads + kv_head * group + qr.head) * p.num_queries +
                                       (qr.pos - p.q_begin)) * D;
  }
#pragma unroll
  for (int col0 = 0; col0 < D; col0 += 32) {
    float dq[4][4] = {};
    mma_smem_rows_times_tile<kTileKeys, D, 32>(dq, s_ds, warp * 16, s_k, col0);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      if (row_base[h] < 0) continue;
#pragma unroll
      for (int n = 0; n < 4; ++n) {
        float* at = p.dq_accum + row_base[h] + col0 + 8 * n + 2 * (lane & 3);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
        atomicAdd(reinterpret_cast<float2*>(at), make_float2(dq[n][2 * h], dq[n][2 * h + 1]));
#else
        atomicAdd(at, dq[n][2 * h]);
        atomicAdd(at + 1, dq[n][2 * h + 1]);
#endif
      }
    }
  }
}

template <typename T, int D, bool kFusedDq>
__global__ void __launch_bounds__(kKeyPassThreads) key_pass_kernel(const __grid_constant__ SparseAttentionParams p) {
  using Smem = KeyPassSmem<D, kFusedDq>;
  extern __shared__ __align__(16) unsigned char smem[];
  T* s_k = reinterpret_cast<T*>(smem);
  T* s_v = s_k + Smem::kKv;
  T* s_q = s_v + Smem::kKv;
  T* s_do = s_q + Smem::kQ;
  T* s_ds = s_do + Smem::kQ;  // kFusedDq: dS of the current query tile, [kTileRows, kTileKeys] swizzled
  auto& s_kmeta = *reinterpret_cast<KeyMetaSmem*>(s_ds + Smem::kDs);
  QueryTileRows* s_rows = reinterpret_cast<QueryTileRows*>(&s_kmeta + 1);  // kRowStages stages
  QueryTileInfo* s_info = reinterpret_cast<QueryTileInfo*>(s_rows + kRowStages);  // kInfoStages stages

  const int item = blockIdx.x, kv_head = blockIdx.y;
  const int key_tile = p.plan.backward.key_tiles[item];
  const int key_class = p.plan.key_tile_class[key_tile];
  const int first = p.plan.backward.offsets[item];
  const int count = p.plan.backward.offsets[item + 1] - first;
  const int b = p.plan.query_tile_row[p.plan.backward.entries[first] & kTileIdMask];
  const int group = p.q_heads / p.kv_heads;
  const int row_end = p.row_query_end[b];
  const int64_t q_batch = int64_t(b) * p.q_stride[0];
  const int64_t kv_base = int64_t(b) * p.kv_stride[0] + int64_t(kv_head) * p.kv_stride[1];

  auto kv_offset = [&](int c) -> int64_t {
    const int32_t row = key_row(p, key_tile, c);
    return row < 0 ? -1 : kv_base + int64_t(row) * p.kv_stride[2];
  };
  load_rows_async<D, kTileKeys, kKeyPassThreads, true>(s_k, static_cast<const T*>(p.k), s_v, static_cast<const T*>(p.v),
                                                       kv_offset);
  load_key_meta(s_kmeta, p, key_tile);

  auto issue_info = [&](int i) {  // query tile i's entry, start and flags (no dependent load: plan arrays by pair)
    if (threadIdx.x != kKeyPassThreads - 1) return;
    QueryTileInfo& info = s_info[i % kInfoStages];
    cp_async_4(&info.entry, p.plan.backward.entries + first + i);
    cp_async_4(&info.start, p.plan.backward.query_start + first + i);
    cp_async_4(&info.flags, p.plan.backward.query_flags + first + i);
  };
  auto issue_rows = [&](int i) {  // query tile i's token metadata, lse and delta (its info has landed)
    QueryTileRows& rows = s_rows[i % kRowStages];
    load_query_tile_rows_async<kTileRows>(rows.meta, rows.lse, rows.delta, p, b, kv_head, group, row_end,
                                          s_info[i % kInfoStages].start, threadIdx.x);
  };
  auto issue_q = [&](int i) {  // query tile i's Q and dO rows into stage i & 1 (its info has landed)
    const int start = s_info[i % kInfoStages].start;
    auto q_offset = [&](int r) {
      return query_row_offset(p, q_batch, kv_head, group, row_end, query_row<kTileRows>(r, group, start));
    };
    const int stage = i & 1;
    load_rows_async<D, kTileRows, kKeyPassThreads, true>(s_q + stage * kTileRows * D, static_cast<const T*>(p.q),
                                                         s_do + stage * kTileRows * D, static_cast<const T*>(p.d_out),
                                                         q_offset);
  };
  for (int i = 0; i < 2 && i < count; ++i) issue_info(i);
  cp_async_commit();  // with the key tile's K and V
  cp_async_wait<0>();
  __syncthreads();
  issue_rows(0);
  issue_q(0);
  cp_async_commit();

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const float scale2 = p.scale * kLog2e;
  float dk[1][D / 8][4], dv[1][D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; ++j) {
    dk[0][j][0] = dk[0][j][1] = dk[0][j][2] = dk[0][j][3] = 0.f;
    dv[0][j][0] = dv[0][j][1] = dv[0][j][2] = dv[0][j][3] = 0.f;
  }

  for (int i = 0; i < count; ++i) {
    cp_async_wait<0>();  // tile i's rows, Q and dO, tile i + 1's info
    __syncthreads();     // ... for every thread; and every warp is done with tile i - 1's stages
    if (i + 1 < count) {
      issue_rows(i + 1);
      issue_q(i + 1);
    }
    if (i + 2 < count) issue_info(i + 2);
    cp_async_commit();
    const int stage = i & 1;
    const QueryTileInfo& info = s_info[i % kInfoStages];
    const QueryTileRows& rows = s_rows[i % kRowStages];
    const int entry = info.entry, start = info.start;
    const bool full = tile_taken_whole(entry & kFullTile, key_class, info.flags, p.rule);
    const T* q_tile = s_q + stage * kTileRows * D;
    const T* do_tile = s_do + stage * kTileRows * D;

    float pt[1][kTileRows / 8][4];  // S^T, then P^T: keys x query rows
#pragma unroll
    for (int n = 0; n < kTileRows / 8; ++n) pt[0][n][0] = pt[0][n][1] = pt[0][n][2] = pt[0][n][3] = 0.f;
    mma_rows_times_tile_t<D, kTileRows, 1>(pt, s_k, warp * 16, q_tile);
    if (!full) {
#pragma unroll
      for (int n = 0; n < kTileRows / 8; ++n) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int r = 8 * n + 2 * (lane & 3) + e;
          const MaskQuery q = query_tile_mask_query<kTileRows>(rows.meta, r, group, start, row_end, key_class, p.rule);
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const MaskKey key = mask_key(s_kmeta, warp * 16 + 8 * h + (lane >> 2));
            if (!gist_mask_allows_class(key_class, q, key, p.rule)) pt[0][n][2 * h + e] = -INFINITY;
          }
        }
      }
    }
#pragma unroll
    for (int n = 0; n < kTileRows / 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = 8 * n + 2 * (lane & 3) + (e & 1);
        const float lse = rows.lse[r];
        const float lse2 = isfinite(lse) ? lse * kLog2e : 0.f;  // no keys: every score is masked
        pt[0][n][e] = exp2f(fmaf(pt[0][n][e], scale2, -lse2));  // masked: exp2(-inf) = 0
      }
    }
    mma_c_times_tile<D, kTileRows, 1>(dv, pt, do_tile);

    float ds[1][kTileRows / 8][4];  // dP^T, then dS^T
#pragma unroll
    for (int n = 0; n < kTileRows / 8; ++n) ds[0][n][0] = ds[0][n][1] = ds[0][n][2] = ds[0][n][3] = 0.f;
    mma_rows_times_tile_t<D, kTileRows, 1>(ds, s_v, warp * 16, do_tile);
#pragma unroll
    for (int n = 0; n < kTileRows / 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = 8 * n + 2 * (lane & 3) + (e & 1);
        ds[0][n][e] = pt[0][n][e] * (ds[0][n][e] - rows.delta[r]);  // masked: P = 0 (delta and dP finite)
      }
    }
    mma_c_times_tile<D, kTileRows, 1>(dk, ds, q_tile);
    if constexpr (kFusedDq) accumulate_dq<T, D>(p, ds, s_ds, s_k, start, b, kv_head, row_end);
  }
  cp_async_wait<0>();

  const bool shared = p.plan.backward.shared[item] != 0;
  write_key_gradients<D>(p, s_kmeta.row, warp * 16 + (lane >> 2), lane, b, kv_head, shared, [&](int h, int j) {
    return KeyGradientPairs{make_float2(dk[0][j][2 * h] * p.scale, dk[0][j][2 * h + 1] * p.scale),
                            make_float2(dv[0][j][2 * h], dv[0][j][2 * h + 1])};
  });
}

// One fp32 workspace [batch, heads, rows, D] (contiguous) into its strided tensor in the input dtype, times scale:
// dk and dv (kv_rows rows per head, scale 1), dq (num_queries rows per head, the attention scale; kFusedDq).
struct WorkspaceRows {
  const float* accum = nullptr;
  void* out = nullptr;
  int64_t batch = 0, heads = 0, rows = 0;
  int64_t stride[3] = {0, 0, 0};  // the output's batch, head and row strides (elements)
  float scale = 1.f;
};

template <typename T, int D>
__global__ void convert_kernel(const WorkspaceRows w) {
  using Lanes = RowLanes<D>;
  const int64_t rows = w.batch * w.heads * w.rows;
  const int col = 8 * Lanes::part();
  for (int64_t row = Lanes::first_row(); row < rows; row += Lanes::row_step()) {
    const int64_t t = row % w.rows, bh = row / w.rows;
    const int64_t h = bh % w.heads, b = bh / w.heads;
    const float4* in = reinterpret_cast<const float4*>(w.accum + row * D + col);
    const float4 lo = in[0], hi = in[1];
    T* out = static_cast<T*>(w.out) + b * w.stride[0] + h * w.stride[1] + t * w.stride[2] + col;
    // One 16-byte store (ptxas split a uint4 assignment here into four 4-byte stores).
    const float s = w.scale;
    const uint32_t a = Pack2<T>::from(lo.x * s, lo.y * s), c = Pack2<T>::from(lo.z * s, lo.w * s);
    const uint32_t e = Pack2<T>::from(hi.x * s, hi.y * s), g = Pack2<T>::from(hi.z * s, hi.w * s);
    asm volatile("st.global.v4.b32 [%0], {%1, %2, %3, %4};" ::"l"(out), "r"(a), "r"(c), "r"(e), "r"(g) : "memory");
  }
}

int grid_for(int64_t threads_needed) {
  const int64_t blocks = (threads_needed + 255) / 256;
  return int(blocks < 65536 ? (blocks > 0 ? blocks : 1) : 65536);
}

template <typename T, int D>
Status run_backward(const SparseAttentionParams& p, cudaStream_t stream) {
  const int64_t q_rows = int64_t(p.batch) * p.q_heads * p.num_queries;
  delta_kernel<T, D><<<grid_for(q_rows * RowLanes<D>::kThreads), 256, 0, stream>>>(p);
  if (cudaGetLastError() != cudaSuccess) return Status::kCudaError;
  const bool fused_dq = p.dq_accum != nullptr && sparse_attention_backward_fuses_dq();
  // Stored dS: the Hopper key pass stores each pair's dS and the stored-dS pass takes dq from it after the key pass.
  const bool stored_ds = p.ds != nullptr && sparse_attention_backward_stored_ds() != StoredDs::kNever;
  if (fused_dq) {
    if (cudaMemsetAsync(p.dq_accum, 0, size_t(q_rows) * D * sizeof(float), stream) != cudaSuccess) {
      return Status::kCudaError;
    }
  } else if (!stored_ds) {
    const Status status =
        dq_sm90_enabled() ? launch_dq_sm90(p, stream) : launch_query_pass(p, /*backward=*/true, stream);
    if (status != Status::kOk) return status;
  }

  const size_t accum_bytes = size_t(p.batch) * p.kv_heads * p.kv_rows * D * sizeof(float);
  if (cudaMemsetAsync(p.dk_accum, 0, accum_bytes, stream) != cudaSuccess ||
      cudaMemsetAsync(p.dv_accum, 0, accum_bytes, stream) != cudaSuccess) {
    return Status::kCudaError;
  }
  if (key_pass_sm90_enabled()) {
    SparseAttentionParams key_pass = p;
    if (!stored_ds) key_pass.ds = nullptr;  // the key pass stores dS wherever ds is set
    Status status = launch_key_pass_sm90(key_pass, stream);
    if (status == Status::kOk && stored_ds) status = launch_dq_ds_sm90(p, stream);
    if (status != Status::kOk) return status;
  } else if (p.plan.backward.num_items > 0) {
    auto launch = [&](auto kernel, size_t smem) {
      return launch_with_smem(kernel, dim3(p.plan.backward.num_items, p.kv_heads), kKeyPassThreads, smem, stream, p) ==
             Status::kOk;
    };
    const bool launched = fused_dq ? launch(key_pass_kernel<T, D, true>, KeyPassSmem<D, true>::bytes(sizeof(T)))
                                   : launch(key_pass_kernel<T, D, false>, KeyPassSmem<D, false>::bytes(sizeof(T)));
    if (!launched) return Status::kCudaError;
  }
  auto convert = [&](const float* accum, void* out, int64_t heads, int64_t rows, const int64_t(&stride)[3],
                     float scale) {
    WorkspaceRows w;
    w.accum = accum;
    w.out = out;
    w.batch = p.batch, w.heads = heads, w.rows = rows, w.scale = scale;
    for (int i = 0; i < 3; ++i) w.stride[i] = stride[i];
    convert_kernel<T, D><<<grid_for(w.batch * heads * rows * RowLanes<D>::kThreads), 256, 0, stream>>>(w);
  };
  convert(p.dk_accum, p.dk, p.kv_heads, p.kv_rows, p.kv_stride, 1.f);
  convert(p.dv_accum, p.dv, p.kv_heads, p.kv_rows, p.kv_stride, 1.f);
  if (fused_dq) convert(p.dq_accum, p.dq, p.q_heads, p.num_queries, p.q_stride, p.scale);
  return cudaGetLastError() == cudaSuccess ? Status::kOk : Status::kCudaError;
}

}  // namespace
}  // namespace detail

// The Hopper key pass leaves dq to the query-block pass.
bool sparse_attention_backward_fuses_dq() { return !detail::key_pass_sm90_enabled(); }

StoredDs sparse_attention_backward_stored_ds() { return detail::dq_stored_ds_mode(); }

Status sparse_attention_backward_cuda(const SparseAttentionParams& params, void* stream) {
  const Status status = detail::check_sparse_attention_params(params, /*backward=*/true);
  if (status != Status::kOk) return status;
  return detail::with_type_and_dim(params, [&](auto type, auto dim) {
    return detail::run_backward<typename decltype(type)::type, dim.value>(params, static_cast<cudaStream_t>(stream));
  });
}

}  // namespace gsa::kernels
