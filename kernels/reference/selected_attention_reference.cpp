// CPU twin of selected_attention_backward_cuda: the same lists and formulas, float64 sums per (query, query
// head), added to the fp32 accumulators in query order (deterministic).
#include <cmath>
#include <vector>

#include "gsa/kernels/selected_attention.h"
#include "half_storage.h"

namespace gsa::kernels {

Status selected_attention_backward_reference(const SelectedAttentionBackwardParams& p) {
  const int group = p.kv_heads > 0 ? p.q_heads / p.kv_heads : 0;
  if (p.num_queries < 0 || p.kv_heads < 1 || group < 1 || p.q_heads % p.kv_heads != 0 || p.head_dim < 1 ||
      p.max_keys < 0 || !p.q || p.k.empty() || p.v.empty() || p.dk.empty() || p.dv.empty() ||
      (p.max_keys > 0 && !p.key_rows) || !p.d_out || !p.lse || !p.delta || !p.dq) {
    return Status::kInvalidArgument;
  }
  const int D = p.head_dim;
  std::vector<double> k_row(D), v_row(D), dq(D);
  for (int n = 0; n < p.num_queries; ++n) {
    for (int h = 0; h < p.q_heads; ++h) {
      const int kv = h / group;
      const int32_t* list = p.key_rows + (int64_t(n) * p.kv_heads + kv) * p.max_keys;
      const int64_t q_off = n * p.q_stride[0] + h * p.q_stride[1];
      const int64_t row = int64_t(n) * p.q_heads + h;
      const void* k_head = p.k.head<const uint16_t>(n, kv, p.kv_heads);
      const void* v_head = p.v.head<const uint16_t>(n, kv, p.kv_heads);
      float* dk_head = p.dk.head<float>(n, kv, p.kv_heads);
      float* dv_head = p.dv.head<float>(n, kv, p.kv_heads);
      const float* d_out = p.d_out + row * D;
      std::fill(dq.begin(), dq.end(), 0.0);
      for (int j = 0; j < p.max_keys; ++j) {
        const int64_t r = list[j];
        if (r < 0) continue;
        double s = 0, dp = 0;
        for (int d = 0; d < D; ++d) {
          k_row[d] = detail::load_element(k_head, r * p.k.row_stride + d, p.dtype);
          v_row[d] = detail::load_element(v_head, r * p.v.row_stride + d, p.dtype);
          s += detail::load_element(p.q, q_off + d, p.dtype) * k_row[d];
          dp += double(d_out[d]) * v_row[d];
        }
        const double prob = std::exp(s * p.scale - p.lse[row]);
        const double ds = prob * (dp - p.delta[row]);
        for (int d = 0; d < D; ++d) {
          dq[d] += p.scale * ds * k_row[d];
          dk_head[r * p.dk.row_stride + d] +=
              static_cast<float>(p.scale * ds * detail::load_element(p.q, q_off + d, p.dtype));
          dv_head[r * p.dv.row_stride + d] += static_cast<float>(prob * d_out[d]);
        }
      }
      for (int d = 0; d < D; ++d) p.dq[row * D + d] += static_cast<float>(dq[d]);
    }
  }
  return Status::kOk;
}

}  // namespace gsa::kernels
