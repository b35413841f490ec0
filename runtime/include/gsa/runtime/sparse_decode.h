// Sparse decode attention bound to LibTorch tensors (kernels/sparse_decode.h): one query per sequence over the
// cache rows listed for its KV group, split-K on CUDA with an fp32 log-sum-exp combine, the float64 twin on CPU.
// Inference only (no autograd).
//
// Contract: q [B, Hq, D]; k, v [B, Hkv, T, D] (the KV cache, bf16 or fp16, D 64 or 128, Hq / Hkv in {1, 2, 4, 8});
// key_rows [B, Hkv, R] integer rows of k/v each query attends (-1 = none; lists of different lengths padded
// with -1; rows must be < T: checked when key_rows is on the host, trusted on the device). Returns out
// [B, Hq, D] and lse [B, Hq], fp32 (lse -inf, out 0 for an empty list). splits: list partitions per (sequence,
// KV head); 0 picks enough to fill the GPU; the kernel merges them in the same launch. range: rows begin[b] ..
// end[b] - 1 attended as well (checked against T when on the host). out_dtype: kFloat, or q's dtype for out
// rounded to it by the kernel (the bits of out.to(q's dtype), without the conversion's launch; lse stays fp32).
// Workspace: on CUDA, several splits count finished splits in one int32 ticket per (sequence, KV head), from a
// tensor kept per device (grown, never freed: graphs captured earlier keep their address; zero between launches,
// no memset per call). It is created outside CUDA-graph captures (a capture that needs a larger one fails by
// name: run the step eagerly first, as DecodeStepGraph does), and calls on one device must not overlap in time
// (one stream, or streams ordered by events).
#pragma once

#include <cstdint>
#include <string>

#include <ATen/ATen.h>

#include "gsa/kernels/kv_rows.h"

namespace gsa {

struct DecodeAttention {
  at::Tensor out;  // [B, Hq, D] fp32 (the kernels' out_dtype when asked)
  at::Tensor lse;  // [B, Hq] fp32
};

// Optional contiguous rows per sequence attended after the list (decode: the tokens generated so far).
struct DecodeRange {
  at::Tensor begin;     // [B] int32 on the device of q: first row
  at::Tensor end;       // [B] int32: one past the last row
  int64_t max_rows = 0; // host bound on end - begin (sizes the split-K partition)
};

DecodeAttention sparse_decode(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& key_rows,
                              double scale, int64_t splits = 0, const DecodeRange* range = nullptr,
                              at::ScalarType out_dtype = at::kFloat);

// The kernels over cache rows given as kv_rows.h (one batched tensor or per-sequence caches through pointer
// tables, on q's device); the caller vouches for the rows (inside each cache, 16-byte aligned, bf16/fp16 as q).
DecodeAttention sparse_decode_rows(const at::Tensor& q, const kernels::KvRows& k, const kernels::KvRows& v,
                                   int64_t kv_heads, const at::Tensor& key_rows, double scale, int64_t splits = 0,
                                   const DecodeRange* range = nullptr, at::ScalarType out_dtype = at::kFloat);

// The same attention with LibTorch ops (any float dtype, any device; fp32 math): the reference backend.
DecodeAttention sparse_decode_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        const at::Tensor& key_rows, double scale, const DecodeRange* range = nullptr);

// Why the kernels cannot run q [B, Hq, D] over a cache of kv_dtype with kv_heads heads ("" when they can).
std::string sparse_decode_unsupported(const at::Tensor& q, at::ScalarType kv_dtype, int64_t kv_heads);
// The same asked of shapes alone (q of q_dtype with q_heads heads of head_dim): what a model config implies.
std::string sparse_decode_unsupported(at::ScalarType q_dtype, int64_t q_heads, int64_t head_dim,
                                      at::ScalarType kv_dtype, int64_t kv_heads);

}  // namespace gsa
