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
// caller's; no rows gives out = 0, lse = -inf). Split s of `splits` takes the s-th ceil(R / splits) slice of the
// list and the s-th ceil(rows / splits) slice of the range (one split: the list, then the range). With one split
// the CTA of (sequence, KV head) writes out and lse itself. With several, split s writes its partial (normalised
// output and lse, fp32) to the workspaces and the last CTA of the (sequence, KV head) to finish, found by a ticket
// counter, merges the splits in the same launch with lse_merge.h's fp32 log-sum-exp merge, in lse_merge_cuda's
// order of operations (the same bits as the partials merged by lse_merge_cuda). out and lse stay fp32, so
// sequence-parallel decode can merge them again across ranks; out_half, when given, receives out rounded to the
// kernel dtype (round to nearest even: the bits of at::Tensor::to), for callers that only feed the output
// projection.
// Tickets: tickets[b * Hkv + kv] counts the finished splits of (sequence b, KV head kv). It must be zero before
// the first call; every launch that completes leaves it zero again (the last CTA wraps it back), so repeated calls
// and CUDA-graph replays need no memset. Launches that share a ticket workspace must not overlap in time (one
// stream, or streams ordered by events); a launch that fails midway leaves it undefined (zero it again).
// Tensors: q [B, Hq, D]; k, v: rows of the cache (kv_rows.h: one [B, Hkv, T, D] tensor or per-sequence caches);
// key_rows [B, Hkv, R] int32 contiguous; out [B, Hq, D] fp32, out_half [B, Hq, D] of dtype, lse [B, Hq] fp32,
// contiguous; out, out_half and partial_out 16-byte aligned; B * Hkv * R and B * Hq below 2^31. dtype bf16 or fp16;
// D 64 or 128; group 1, 2, 4 or 8.
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
  float* partial_out = nullptr;       // [splits, B * Hq, D] workspace (splits > 1; unused with one split)
  float* partial_lse = nullptr;       // [splits, B * Hq] workspace (splits > 1)
  int32_t* tickets = nullptr;         // [B * Hkv] workspace (splits > 1): zero before the call, zero after it
  float* out = nullptr;               // [B, Hq, D] fp32; may be null when out_half is given
  float* lse = nullptr;               // [B, Hq] fp32
  void* out_half = nullptr;           // [B, Hq, D] of dtype, optional: out rounded to the kernel dtype
};

// Slice `split` of `splits` of n rows as the kernels cut the list and the range: ceil(n / splits) rows a slice, in
// order, the last slices shorter or empty.
struct SplitShare {
  int32_t first, count;
};
GSA_KV_HOST_DEVICE SplitShare split_share(int32_t split, int32_t splits, int32_t n) {
  const int32_t size = (n + splits - 1) / splits;
  const int32_t first = split * size < n ? split * size : n;
  return {first, n - first < size ? n - first : size};
}

Status sparse_decode_cuda(const SparseDecodeParams& params, void* stream);
// How many CTAs of the kernel sparse_decode_cuda runs for params' dtype, head dim and group (and
// GSA_DECODE_KERNEL) fit on the current device at once: one wave of the grid. 0 when params name no kernel, the
// device cannot be queried, or without CUDA. splits and the pointers are not read.
int sparse_decode_wave_ctas(const SparseDecodeParams& params);
// CPU twin (float64 accumulation, out / out_half rounded from it through fp32; the workspaces and tickets are
// unused and may be null).
Status sparse_decode_reference(const SparseDecodeParams& params);

}  // namespace gsa::kernels
