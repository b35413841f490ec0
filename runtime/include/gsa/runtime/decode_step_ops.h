// LibTorch bindings of the fused decode-step kernels (gsa/kernels/decode_step_ops.h): RoPE + KV-cache append,
// residual add + RMSNorm, and SiLU-gated multiply, each one launch where a Llama decode step runs several
// LibTorch ops, with the same results (rounding facts in the kernels' header):
//   rope_append   == apply_rope (runtime/rope.h) on q and k, then the K and V rows written into the caches, bit
//                    for bit;
//   add_rms_norm  == (x + y, at::rms_norm(x + y, {H}, weight, eps)): the sum bit for bit, the norm within one
//                    ulp of the dtype (the order of its fp32 sum of squares differs);
//   silu_mul      == at::silu(gate) * up, bit for bit.
//
// Contract: bf16 or fp16 tensors, all on one device. CUDA tensors run the CUDA kernel on the device's current
// stream (no host synchronisation and no allocation other than the outputs and, for rows a kernel cannot read
// with 16-byte loads, a contiguous copy, both through LibTorch's caching allocator: capturable in a CUDA
// graph); CPU tensors run the CPU twins. Sizes that are multiples of 8 (head_dim, hidden, intermediate),
// hidden <= kernels::kAddRmsNormMaxHidden: decode_step_ops_supported says whether a model's sizes qualify.
// Bad dtypes, shapes or devices throw gsa::Error naming the argument. No autograd (inference only).
#pragma once

#include <cstdint>
#include <utility>

#include <ATen/ATen.h>

#include "gsa/kernels/kv_rows.h"

namespace gsa {

// Where a decode step's k and v rows of one layer go: row positions[b] of sequence b's caches (positions [B]
// int64 on the caches' device, each inside its sequence's caches), or nowhere with positions undefined (a rank of
// distributed decode that does not hold the step's tail only rotates q). rope_append's positions and caches;
// LayerAttention::step_kv_rows (llama_model.h) and skinny_rope_linear (skinny_gemm.h) take it whole.
struct StepKvRows {
  at::Tensor positions;
  kernels::KvRows k, v;
};

// Whether rope_append, add_rms_norm and silu_mul run a model of these sizes in `dtype`.
bool decode_step_ops_supported(at::ScalarType dtype, int64_t head_dim, int64_t hidden, int64_t intermediate);

// One decode step's q, k and v out of the fused projection: returns q_out [B, Hq, D] (contiguous) = rope(q), and
// writes rope(k) and v at row positions[b] of sequence b's K and V caches.
//   qkv:             [B, (Hq + 2 Hkv) * D] (or [B, 1, ...]): q heads, k heads, v heads; last dim contiguous
//   cos/sin_rotated: B rows of D (e.g. make_rope_tables' [B, 1, 1, D] for one position per sequence)
//   positions:       [B] int64, on qkv's device; row positions[b] must lie inside sequence b's caches (not
//                    checked: that would need a host sync)
//   k_cache/v_cache: the caches' rows (kv_rows.h; DecodeCaches::rows or kv_rows_of), in qkv's dtype with head
//                    dim D and Hkv heads, on qkv's device (pointer tables included)
at::Tensor rope_append(const at::Tensor& qkv, const at::Tensor& cos, const at::Tensor& sin_rotated, int64_t q_heads,
                       int64_t kv_heads, const at::Tensor& positions, const kernels::KvRows& k_cache,
                       const kernels::KvRows& v_cache);

// x, y [..., H] (the same shape), weight [H] -> (sum [..., H] = x + y, normed [..., H] = RMSNorm(sum) * weight).
std::pair<at::Tensor, at::Tensor> add_rms_norm(const at::Tensor& x, const at::Tensor& y, const at::Tensor& weight,
                                               double eps);

// gate_up [..., 2 I] (gate columns, then up columns) -> [..., I] = silu(gate) * up.
at::Tensor silu_mul(const at::Tensor& gate_up);

}  // namespace gsa
