// Backward of list attention (sparse_decode.h) for training: each selective query of a training step attends to
// its own list of key rows (the unfolded chunks and chosen gists); the forward runs sparse_decode_cuda with one
// row table entry per (query, KV head), and this kernel takes the gradients of its out and lse back to q, k, v.
//
// Contract: for query n and query head h (KV head kv = h / G, G = q_heads / kv_heads), over the rows
// r_j = key_rows[n, kv, j] >= 0 of k.head(n, kv) and v.head(n, kv) (kv_rows.h, one table entry per (query, KV
// head); a row listed twice counts twice, as in the forward):
//   s_j = scale q[n,h] . k_j,  p_j = exp(s_j - lse[n,h]),  dp_j = d_out[n,h] . v_j,  ds_j = p_j (dp_j - delta[n,h])
//   dq[n,h] += scale sum_j ds_j k_j,   dk_j += scale sum_h ds_j q[n,h],   dv_j += sum_h p_j d_out[n,h]
// where delta[n,h] = d_out[n,h] . out[n,h] - d_lse[n,h] is the caller's. dq, dk and dv are fp32 accumulators
// the kernel adds to (atomically on CUDA: the lists of different queries share rows), dk and dv reached through
// their own row tables with the same row numbers as k and v. q bf16/fp16 [N, Hq, D] with q_stride; d_out [N, Hq,
// D], lse and delta [N, Hq], dq [N, Hq, D] fp32 contiguous; key_rows [N, Hkv, R] int32 contiguous. D 64 or 128,
// G 1, 2, 4 or 8 (the CPU twin: any). splits partitions each list over CTAs (>= 1).
#pragma once

#include <cstdint>

#include "gsa/kernels/kv_rows.h"
#include "gsa/kernels/lse_merge.h"         // Status
#include "gsa/kernels/sparse_attention.h"  // DType

namespace gsa::kernels {

struct SelectedAttentionBackwardParams {
  DType dtype = DType::kBFloat16;
  int32_t num_queries = 0, q_heads = 0, kv_heads = 0, head_dim = 0;
  int32_t max_keys = 0;  // R: entries per (query, KV head) list
  int32_t splits = 1;    // list partitions per (query, KV head)
  float scale = 1.f;
  const void* q = nullptr;
  int64_t q_stride[2] = {0, 0};       // query, head
  KvRows k, v;                        // bf16/fp16 rows
  const int32_t* key_rows = nullptr;  // [N, Hkv, R]
  const float* d_out = nullptr;       // [N, Hq, D]
  const float* lse = nullptr;         // [N, Hq]
  const float* delta = nullptr;       // [N, Hq]
  float* dq = nullptr;                // [N, Hq, D] accumulated
  KvRows dk, dv;                      // fp32 rows, accumulated
};

Status selected_attention_backward_cuda(const SelectedAttentionBackwardParams& params, void* stream);
// CPU twin (float64 sums per (query, head), then added to the accumulators; splits ignored).
Status selected_attention_backward_reference(const SelectedAttentionBackwardParams& params);

}  // namespace gsa::kernels
