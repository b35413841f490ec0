// CPU twin of sparse_decode_cuda: the same lists and semantics, float64 accumulation, one pass per (sequence,
// query head) with no splits (so no split merge and no tickets). out and out_half are written like the kernels'
// (either may be null, not both): the output rounded to fp32, and that fp32 value rounded to the dtype.
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "gsa/kernels/sparse_decode.h"
#include "half_storage.h"

namespace gsa::kernels {
Status sparse_decode_reference(const SparseDecodeParams& p) {
  const int group = p.kv_heads > 0 ? p.q_heads / p.kv_heads : 0;
  if (p.batch < 1 || p.kv_heads < 1 || group < 1 || p.q_heads % p.kv_heads != 0 || p.head_dim < 1 || p.max_keys < 0 ||
      !p.q || p.k.empty() || p.v.empty() || (p.max_keys > 0 && !p.key_rows) || (!p.out && !p.out_half) || !p.lse ||
      (p.range_begin == nullptr) != (p.range_end == nullptr)) {
    return Status::kInvalidArgument;
  }
  const int D = p.head_dim;
  for (int b = 0; b < p.batch; ++b) {
    for (int h = 0; h < p.q_heads; ++h) {
      const int kv = h / group;
      const int32_t* list = p.key_rows + (int64_t(b) * p.kv_heads + kv) * p.max_keys;
      const int64_t q_off = b * p.q_stride[0] + h * p.q_stride[1];
      const void* k_head = p.k.head<const uint16_t>(b, kv, p.kv_heads);
      const void* v_head = p.v.head<const uint16_t>(b, kv, p.kv_heads);
      std::vector<int32_t> rows;
      for (int j = 0; j < p.max_keys; ++j) {
        if (list[j] >= 0) rows.push_back(list[j]);
      }
      if (p.range_begin != nullptr) {
        for (int32_t r = p.range_begin[b]; r < p.range_end[b]; ++r) rows.push_back(r);
      }
      std::vector<double> score;
      for (int32_t r : rows) {
        double dot = 0;
        for (int d = 0; d < D; ++d)
          dot += detail::load_element(p.q, q_off + d, p.dtype) *
                 detail::load_element(k_head, r * p.k.row_stride + d, p.dtype);
        score.push_back(dot * p.scale);
      }
      const int64_t row = int64_t(b) * p.q_heads + h;
      double m = -std::numeric_limits<double>::infinity(), sum = 0;
      for (double s : score) m = std::max(m, s);
      for (double s : score) sum += std::exp(s - m);
      for (int d = 0; d < D; ++d) {
        double o = 0;
        for (size_t j = 0; j < rows.size(); ++j) {
          o += std::exp(score[j] - m) / sum * detail::load_element(v_head, rows[j] * p.v.row_stride + d, p.dtype);
        }
        const float rounded = static_cast<float>(o);
        if (p.out != nullptr) p.out[row * D + d] = rounded;
        if (p.out_half != nullptr) detail::store_element(p.out_half, row * D + d, rounded, p.dtype);
      }
      p.lse[row] = rows.empty() ? -std::numeric_limits<float>::infinity() : static_cast<float>(m + std::log(sum));
    }
  }
  return Status::kOk;
}

}  // namespace gsa::kernels
