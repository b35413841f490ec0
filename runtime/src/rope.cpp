#include "gsa/runtime/rope.h"

#include "gsa/runtime/error.h"

namespace gsa {

RopeTables make_rope_tables(const at::Tensor& positions, int64_t head_dim, double theta, at::ScalarType dtype) {
  GSA_CHECK(positions.dim() == 2, "rope positions must be [B, T], got ", positions.sizes());
  GSA_CHECK(head_dim % 2 == 0, "rope needs an even head_dim, got ", head_dim);
  const auto fp32 = positions.options().dtype(at::kFloat);
  // inv_freq[i] = theta^(-2i/D), i < D/2; computed like HF: 1 / theta^(arange(0, D, 2) / D).
  at::Tensor exponents = at::arange(0, head_dim, 2, positions.options().dtype(at::kLong)).to(at::kFloat) /
                         static_cast<double>(head_dim);
  at::Tensor inv_freq = 1.0 / at::pow(at::scalar_tensor(theta, fp32), exponents);   // [D/2]
  at::Tensor freqs = positions.to(at::kFloat).unsqueeze(-1) * inv_freq;              // [B, T, D/2]
  at::Tensor emb = at::cat({freqs, freqs}, -1).unsqueeze(1);                         // [B, 1, T, D]
  return RopeTables{emb.cos().to(dtype), emb.sin().to(dtype)};
}

at::Tensor apply_rope(const at::Tensor& x, const RopeTables& tables) {
  const int64_t half = x.size(-1) / 2;
  at::Tensor x1 = x.narrow(-1, 0, half);
  at::Tensor x2 = x.narrow(-1, half, half);
  at::Tensor rotated = at::cat({-x2, x1}, -1);
  return x * tables.cos + rotated * tables.sin;
}

}  // namespace gsa
