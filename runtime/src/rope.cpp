#include "gsa/runtime/rope.h"

#include <cmath>

#include "gsa/runtime/error.h"

namespace gsa {

at::Tensor rope_inv_freq(const ModelOptions& o, at::Device device) {
  const int64_t head_dim = o.head_dim;
  GSA_CHECK(head_dim % 2 == 0, "rope needs an even head_dim, got ", head_dim);
  const auto fp32 = at::TensorOptions().dtype(at::kFloat).device(device);
  // inv_freq[i] = theta^(-2i/D), i < D/2; computed like HF: 1 / theta^(arange(0, D, 2) / D).
  at::Tensor exponents =
      at::arange(0, head_dim, 2, fp32.dtype(at::kLong)).to(at::kFloat) / static_cast<double>(head_dim);
  at::Tensor inv_freq = 1.0 / at::pow(at::scalar_tensor(o.rope_theta, fp32), exponents);  // [D/2]
  if (o.rope_scaling == RopeScaling::kNone) return inv_freq;
  const double factor = o.rope_scaling_factor, low = o.rope_low_freq_factor, high = o.rope_high_freq_factor;
  const double context = static_cast<double>(o.rope_original_max_position);
  at::Tensor wavelen = 2 * M_PI / inv_freq;
  at::Tensor scaled = at::where(wavelen > context / low, inv_freq / factor, inv_freq);
  at::Tensor smooth = (context / wavelen - low) / (high - low);
  at::Tensor blended = (1 - smooth) * scaled / factor + smooth * scaled;
  at::Tensor medium = (wavelen >= context / high).logical_and(wavelen <= context / low);
  return at::where(medium, blended, scaled);
}

RopeTables make_rope_tables(const at::Tensor& positions, const at::Tensor& inv_freq, at::ScalarType dtype) {
  GSA_CHECK(positions.dim() == 2, "rope positions must be [B, T], got ", positions.sizes());
  at::Tensor freqs = positions.to(at::kFloat).unsqueeze(-1) * inv_freq.to(positions.device());  // [B, T, D/2]
  at::Tensor emb = at::cat({freqs, freqs}, -1).unsqueeze(1);                                    // [B, 1, T, D]
  at::Tensor sin_half = freqs.sin().unsqueeze(1);                                               // [B, 1, T, D/2]
  return RopeTables{emb.cos().to(dtype), at::cat({-sin_half, sin_half}, -1).to(dtype)};
}

// rotate_half(x) * sin = [x2, x1] * [-sin, sin] (the sign lives in the table): three kernels (cat, mul, addcmul)
// instead of five (a decode step runs this twice per layer).
at::Tensor apply_rope(const at::Tensor& x, const RopeTables& tables) {
  const int64_t half = x.size(-1) / 2;
  at::Tensor swapped = at::cat({x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);  // [x2, x1]
  return at::addcmul(x * tables.cos, swapped, tables.sin_rotated);
}

}  // namespace gsa
