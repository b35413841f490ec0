// Rotary position embedding, exactly as Hugging Face Llama and Qwen2 apply it (rotate_half convention), with
// Llama 3.1's "llama3" frequency scaling when the model options ask for it.
//
// Contract: positions are the GSA RoPE positions of the layout (token t gets t minus the number of gists at or
// before t, DESIGN.md section 4.2), so gists share the position of the raw token before them. The inverse
// frequencies and angles are computed in fp32 (as transformers does) and the tables cast to the activations'
// dtype. llama3 scaling (transformers' _compute_llama3_parameters): with L = rope_original_max_position and
// wavelength w = 2 pi / inv_freq, frequencies with w > L / low_freq_factor are divided by factor, those with
// w < L / high_freq_factor are kept, and those between are blended with s = (L / w - low) / (high - low):
// (1 - s) * f / factor + s * f.
#pragma once

#include <cstdint>

#include <ATen/ATen.h>

#include "gsa/config/options.h"

namespace gsa {

struct RopeTables {
  at::Tensor cos;          // [B, 1, T, D]
  at::Tensor sin_rotated;  // [B, 1, T, D]: sin with rotate_half's sign, [-sin(f), sin(f)]
};

// The inverse frequencies of the model's RoPE (theta, scaling): [head_dim / 2] fp32 on `device`.
at::Tensor rope_inv_freq(const ModelOptions& options, at::Device device);

// positions: [B, T] int64; inv_freq: [D/2] fp32 from rope_inv_freq. Returns tables in `dtype` on the positions'
// device.
RopeTables make_rope_tables(const at::Tensor& positions, const at::Tensor& inv_freq, at::ScalarType dtype);

// x: [B, H, T, D] -> [B, H, T, D]: x * cos + rotate_half(x) * sin (in bf16 the second product is not rounded
// before the sum, unlike transformers' three separate ops: at most one rounding apart).
at::Tensor apply_rope(const at::Tensor& x, const RopeTables& tables);

}  // namespace gsa
