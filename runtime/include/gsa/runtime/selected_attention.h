// The selective queries' attention over their selected keys in training, on the kernels, with autograd: each
// query attends to its own list of key rows (the unfolded chunks and chosen gists that selection returned).
//
// Contract: selected_attention(q, k, v, rows, key_rows, scale, heads) with q [N, Hq, D] (the selective queries),
// k, v [B, Hkv, S, D] (the keys, post-RoPE), rows [N] int64 (the batch row of each query), key_rows [N, G, R]
// integer (columns of k/v, -1 = none; values < S are the caller's to guarantee, checked only on host tensors) for
// the query's G KV heads: heads[n] .. heads[n] + G - 1 of k and v when heads [N] int64 is given (an unfold-routing
// owner attends one KV head per item: G = 1), else 0 .. Hkv - 1 (G = Hkv); Hq / G query heads per KV head.
// Returns out [N, Hq, D] and lse [N, Hq] in fp32 (an empty list: out 0, lse -inf), the same as a masked softmax
// over the gathered rows (attention.cpp's reference path), and carries gradients to q, k and v. A row listed
// twice counts twice. Forward: the sparse decode kernels (sparse_decode.h) over per-(query, KV head) row tables;
// backward: selected_attention_backward (kernels/selected_attention.h), fp32 atomic accumulation of dk, dv on
// CUDA (not bit-reproducible), the float64 twins on the CPU. Runs where selected_attention_unsupported() is "".
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "gsa/runtime/attention.h"  // PartialAttention

namespace gsa {

// Why the kernels cannot run these inputs ("" when they can): bf16/fp16 q, k, v of one dtype, D 64 or 128,
// Hq / G in {1, 2, 4, 8} (G = kv_heads, or k's Hkv when kv_heads is 0), CPU or CUDA (built with CUDA).
std::string selected_attention_unsupported(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                           int64_t kv_heads = 0);

// -> {out [N, Hq, D], lse [N, Hq]} fp32.
PartialAttention selected_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                    const at::Tensor& rows, const at::Tensor& key_rows, double scale,
                                    const at::Tensor& heads = at::Tensor());

}  // namespace gsa
