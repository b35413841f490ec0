// LibTorch binding of the skinny GEMM kernel (gsa/kernels/skinny_gemm.h): a decode step's Linear layers at a
// few activation rows, streaming the weight once at close to memory bandwidth where at::mm (cuBLAS) does not.
//   skinny_linear(x, W, bias)                       == at::linear(x, W, bias), one rounding of an fp32 sum
//   skinny_linear(x, W_gate_up, {}, kSiluMul)       == silu_mul(at::linear(x, W_gate_up)) (decode_step_ops.h)
//   skinny_linear(x, W, {}, kNone, /*float_out=*/1) == at::linear(x, W).to(at::kFloat) (the LM head's logits)
// Only the order of the fp32 sum differs from LibTorch's, so a result may differ from at::linear's by one ulp of
// the dtype (more where the sum cancels); SiLU-mul of the same sums is bit for bit.
//   skinny_rope_linear(x, W_qkv, b, target) == rope_append(skinny_linear(x, W_qkv, b), target's tables, positions
//                    and caches) bit for bit (decode_step_ops.h): a decode step's q/k/v projection with RoPE and the
//                    K/V cache append in the GEMM's epilogue (skinny_gemm.h's kRopeAppend).
//
// Contract: x and weight (and bias) bf16 or fp16, of one dtype, on one device. CUDA tensors run the CUDA kernel
// on the device's current stream (no host synchronisation and no allocation other than the output and, for rows
// the kernel cannot read with 16-byte loads, a contiguous copy, both through LibTorch's caching allocator:
// capturable in a CUDA graph; a weight that needs that copy is slow, keep weights contiguous); CPU tensors run
// the CPU twin. x has at most kernels::kSkinnyGemmMaxRows rows and K a multiple of 8: skinny_linear_supported
// says whether a call qualifies, so callers can fall back to at::linear. Bad dtypes, shapes or devices throw
// gsa::Error naming the argument. No autograd (inference only).
#pragma once

#include <cstdint>
#include <optional>

#include <ATen/ATen.h>

#include "gsa/kernels/skinny_gemm.h"
#include "gsa/runtime/decode_step_ops.h"  // StepKvRows

namespace gsa {

using kernels::SkinnyEpilogue;

// Whether skinny_linear runs `rows` activation rows of `in_features` (K) elements in `dtype`.
bool skinny_linear_supported(at::ScalarType dtype, int64_t rows, int64_t in_features);

// x [..., K] (at most kSkinnyGemmMaxRows rows in all), weight [N, K] (Linear's layout; kSiluMul: the gate rows,
// then the up rows), bias [N] or none -> [..., N] (kNone) or [..., N / 2] (kSiluMul), in x's dtype, or fp32
// holding the dtype-rounded values with float_out. constant_weight: the weight is not written by the work queued
// just before this call (a model's parameters), so on CUDA the kernel streams it while that work finishes
// (kernels/src/pdl.cuh); the result is the same either way.
at::Tensor skinny_linear(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias = {},
                         SkinnyEpilogue epilogue = SkinnyEpilogue::kNone, bool float_out = false,
                         bool constant_weight = false);

// skinny_rope_linear's RoPE operands and where the step's k and v rows go (rope_append's, decode_step_ops.h).
struct SkinnyRopeTarget {
  int64_t q_heads = 0, kv_heads = 0;  // Hq, Hkv
  at::Tensor cos, sin_rotated;        // B rows of D each (e.g. make_rope_tables' [B, 1, 1, D])
  StepKvRows kv;                      // positions on x's device (undefined: k and v are not stored) and caches
};

// Whether skinny_rope_linear runs `rows` rows of `in_features` elements in `dtype` with head dim D: the skinny
// GEMM's sizes and D a multiple of 16.
bool skinny_rope_linear_supported(at::ScalarType dtype, int64_t rows, int64_t in_features, int64_t head_dim);

// x [B, K]; weight [(Hq + 2 Hkv) D, K] the q, k and v projections stacked (bias [(Hq + 2 Hkv) D] or none) -> q
// [B, Hq, D] rotated, the k heads rotated and the v heads written at row positions[b] of sequence b's caches
// (target.kv.positions defined: each must lie inside its sequence's caches, not checked: that would need a host
// sync).
at::Tensor skinny_rope_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                              const SkinnyRopeTarget& target, bool constant_weight = false);

}  // namespace gsa
