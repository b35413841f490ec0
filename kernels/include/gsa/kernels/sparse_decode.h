// Sparse decode attention: one query per sequence over an explicit list of the cache rows it attends (the sink,
// the gists and local window of the prompt, the selected chunks and gists: what selection chose) and, optionally,
// one contiguous range of rows per sequence (the tokens generated so far, which grow by one per step without any
// list being rewritten), split over the rows (split-K, Flash-Decoding style) and batched over sequences of
// different lengths.
//
// Contract: for sequence b and query head h (KV head h / group),
//   out[b, h] = sum_j softmax_j(scale * q[b, h] . k[b, kv, r_j]) v[b, kv, r_j],  lse[b, h] = log sum_j exp(...)
// over the rows r_j = key_rows[b, kv, j] >= 0 (-1 entries are skipped) followed by the rows
// range_begin[b] .. range_end[b] - 1 when the range arrays are given (order and duplicate-free rows are the
// caller's; no rows gives out = 0, lse = -inf). Split s of the list writes its partial (normalised output
// and lse, fp32) to the workspaces; the partials are merged by the log-sum-exp merge (lse_merge.h) in fp32 into
// out and lse, which sequence-parallel decode can merge again across ranks.
// Tensors: q [B, Hq, D]; k, v: rows of the cache (kv_rows.h: one [B, Hkv, T, D] tensor or per-sequence caches);
// key_rows [B, Hkv, R] int32 contiguous; out [B, Hq, D] fp32, lse [B, Hq] fp32, contiguous. dtype bf16 or fp16; D 64 or
// 128; group 1, 2, 4 or 8.
// Kernels: groups of 4 and 8 run on tensor cores (the probabilities rounded to the input dtype before P V, as
// in FlashAttention), groups of 1 and 2 on CUDA cores in fp32; the environment variable GSA_DECODE_KERNEL=simt or
// =mma forces one of them for every group (tests, A/B benches).
#pragma once

#include <cstdint>

#include "gsa/kernels/kv_rows.h"
#include "gsa/kernels/lse_merge.h"          // Status
#include "gsa/kernels/sparse_attention.h"   // DType

namespace gsa::kernels {

struct SparseDecodeParams {
  DType dtype = DType::kBFloat16;
  int32_t batch = 0, q_heads = 0, kv_heads = 0, head_dim = 0;
  int32_t max_keys = 0;               // R: entries per (sequence, KV head) list
  int32_t splits = 1;                 // list partitions per (sequence, KV head), >= 1
  float scale = 1.f;
  const void* q = nullptr;
  int64_t q_stride[2] = {0, 0};       // batch, head
  KvRows k, v;                        // the cache (kv_rows.h)
  const int32_t* key_rows = nullptr;  // [B, Hkv, R]
  const int32_t* range_begin = nullptr;  // [B] optional (both or neither): first row of the contiguous range
  const int32_t* range_end = nullptr;    // [B] one past its last row (an empty range when <= range_begin)
  float* partial_out = nullptr;       // [splits, B * Hq, D] workspace
  float* partial_lse = nullptr;       // [splits, B * Hq] workspace
  float* out = nullptr;               // [B, Hq, D]
  float* lse = nullptr;               // [B, Hq]
};

Status sparse_decode_cuda(const SparseDecodeParams& params, void* stream);
// How many CTAs of the kernel sparse_decode_cuda runs for params' dtype, head dim and group (and
// GSA_DECODE_KERNEL) fit on the current device at once: one wave of the grid. 0 when params name no kernel, the
// device cannot be queried, or without CUDA. splits and the pointers are not read.
int sparse_decode_wave_ctas(const SparseDecodeParams& params);
// CPU twin (float64 accumulation; the workspaces are unused).
Status sparse_decode_reference(const SparseDecodeParams& params);

}  // namespace gsa::kernels
