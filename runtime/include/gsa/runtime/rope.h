// Rotary position embedding, exactly as Hugging Face Llama applies it (rotate_half convention).
//
// Contract: positions are the GSA RoPE positions of the layout (token t gets t minus the number of gists at or
// before t, DESIGN.md section 4.2), so gists share the position of the raw token before them. The angles are
// computed in fp32 (as HF does) and cast to the activations' dtype.
#pragma once

#include <ATen/ATen.h>

namespace gsa {

struct RopeTables {
  at::Tensor cos;  // [B, 1, T, D]
  at::Tensor sin;  // [B, 1, T, D]
};

// positions: [B, T] int64. Returns tables for head_dim D in `dtype` on the positions' device.
RopeTables make_rope_tables(const at::Tensor& positions, int64_t head_dim, double theta, at::ScalarType dtype);

// x: [B, H, T, D] -> [B, H, T, D]: x * cos + rotate_half(x) * sin.
at::Tensor apply_rope(const at::Tensor& x, const RopeTables& tables);

}  // namespace gsa
