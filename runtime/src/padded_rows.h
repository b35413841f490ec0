// Ragged host vectors padded into one tensor (runtime-internal helper of the plans).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

namespace gsa {

// rows of different lengths -> [rows.size(), max(1, longest)] of `dtype` (kLong or kInt) on the host, `fill`
// after each row's end.
template <typename T>
at::Tensor pad_rows(const std::vector<std::vector<T>>& rows, int64_t fill, at::ScalarType dtype = at::kLong) {
  int64_t width = 1;
  for (const auto& r : rows) width = std::max<int64_t>(width, static_cast<int64_t>(r.size()));
  at::Tensor out = at::full({static_cast<int64_t>(rows.size()), width}, fill, at::kLong);
  auto acc = out.accessor<int64_t, 2>();
  for (size_t b = 0; b < rows.size(); ++b)
    for (size_t i = 0; i < rows[b].size(); ++i) acc[b][i] = static_cast<int64_t>(rows[b][i]);
  return dtype == at::kLong ? out : out.to(dtype);
}

// [B_i, W_i] tensors (one dtype and device) padded with `fill` to the widest W and stacked: [sum B_i, W].
inline at::Tensor stack_padded(const std::vector<at::Tensor>& tables, int64_t fill) {
  int64_t width = 1;
  for (const at::Tensor& t : tables) width = std::max(width, t.size(1));
  std::vector<at::Tensor> padded;
  for (const at::Tensor& t : tables) padded.push_back(at::constant_pad_nd(t, {0, width - t.size(1)}, fill));
  return at::cat(padded, 0);
}

}  // namespace gsa
