// CPU reference twin of lse_merge_cuda (STYLE.md practice 12): the same contract, float64 accumulation,
// deliberately naive (one row at a time, one part at a time, no vectorisation).
#include <cmath>
#include <cstdint>
#include <limits>

#include "gsa/kernels/lse_merge.h"
#include "lse_merge_params.h"

namespace gsa::kernels {

Status lse_merge_reference(const LseMergeParams& params) {
  const Status status = detail::check_lse_merge_params(params);
  if (status != Status::kOk) return status;
  const int64_t P = params.num_parts, R = params.rows, D = params.dim;
  const double neg_inf = -std::numeric_limits<double>::infinity();

  for (int64_t r = 0; r < R; ++r) {
    // 1. The largest part lse of the row.
    double max_lse = neg_inf;
    for (int64_t p = 0; p < P; ++p) {
      const double l = params.partial_lse[p * R + r];
      if (l > max_lse) max_lse = l;
    }
    float* out_row = params.out + r * D;
    // 2. No part has a key: the merged row is empty.
    if (max_lse == neg_inf) {
      for (int64_t d = 0; d < D; ++d) out_row[d] = 0.0f;
      params.lse[r] = -std::numeric_limits<float>::infinity();
      continue;
    }
    // 3. Denominator relative to the max, and the merged lse.
    double sum = 0.0;
    for (int64_t p = 0; p < P; ++p) sum += std::exp(static_cast<double>(params.partial_lse[p * R + r]) - max_lse);
    const double lse = max_lse + std::log(sum);
    params.lse[r] = static_cast<float>(lse);
    // 4. Weighted sum of the part outputs; empty parts (lse -inf) are skipped, their rows are never read.
    for (int64_t d = 0; d < D; ++d) {
      double acc = 0.0;
      for (int64_t p = 0; p < P; ++p) {
        const double l = params.partial_lse[p * R + r];
        if (l == neg_inf) continue;
        acc += std::exp(l - lse) * static_cast<double>(params.partial_out[(p * R + r) * D + d]);
      }
      out_row[d] = static_cast<float>(acc);
    }
  }
  return Status::kOk;
}

}  // namespace gsa::kernels
