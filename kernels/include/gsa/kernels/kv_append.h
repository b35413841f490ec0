// Appends one decode step's keys and values to the caches of a batch: for every sequence b and KV head kv, the
// new row src[b, kv] (D elements) is written at row positions[b] of (b, kv) in dst (kv_rows.h: one batched
// tensor or per-sequence caches), for K and V in one launch. dtype bf16 or fp16; D a multiple of 8.
#pragma once

#include <cstdint>

#include "gsa/kernels/kv_rows.h"
#include "gsa/kernels/lse_merge.h"         // Status
#include "gsa/kernels/sparse_attention.h"  // DType

namespace gsa::kernels {

struct KvAppendParams {
  DType dtype = DType::kBFloat16;
  int32_t batch = 0, kv_heads = 0, head_dim = 0;
  const void* k_new = nullptr;         // [B, Hkv, D]
  const void* v_new = nullptr;
  int64_t new_stride[2] = {0, 0};      // batch, head (the same for k_new and v_new; last dim contiguous)
  const int64_t* positions = nullptr;  // [B] row to write (the caller checks it is inside each cache)
  KvRows k, v;                         // destination caches
};

Status kv_append_cuda(const KvAppendParams& params, void* stream);
Status kv_append_reference(const KvAppendParams& params);

}  // namespace gsa::kernels
