// CPU twin of skinny_gemm.h: each sum x[m] . W[n] (+ bias[n]) in float64, then the kernel's roundings (SiLU in
// fp32, as decode_step_ops' silu_mul). Deliberately plain: one weight row at a time, widened to double once and
// dotted with every activation row.
#include <cmath>
#include <cstdint>
#include <vector>

#include "gsa/kernels/skinny_gemm.h"
#include "half_storage.h"

namespace gsa::kernels {
namespace {

using detail::load_element;
using detail::store_element;

// v rounded to the dtype and read back as fp32.
float round_to(double v, DType dtype) {
  uint16_t bits;
  store_element(&bits, 0, v, dtype);
  return static_cast<float>(load_element(&bits, 0, dtype));
}

// Row `row` of a [rows, K] matrix widened to double.
std::vector<double> widened(const void* base, int64_t row, int64_t stride, int32_t k, DType dtype) {
  const uint16_t* r = static_cast<const uint16_t*>(base) + row * stride;
  std::vector<double> out(k);
  for (int32_t i = 0; i < k; ++i) out[i] = load_element(r, i, dtype);
  return out;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += a[i] * b[i];
  return sum;
}

}  // namespace

Status skinny_gemm_reference(const SkinnyGemmParams& p) {
  if (!skinny_gemm_valid(p)) return Status::kInvalidArgument;
  const bool silu = p.epilogue == SkinnyEpilogue::kSiluMul;
  const int64_t cols = skinny_gemm_out_cols(p);
  std::vector<std::vector<double>> x(p.m);  // [M][K]
  for (int32_t m = 0; m < p.m; ++m) x[m] = widened(p.x, m, p.x_stride, p.k, p.dtype);
  // The sums of weight row n with every activation row (bias included). -> [M]
  auto sums = [&](int64_t n) {
    const std::vector<double> w = widened(p.weight, n, p.weight_stride, p.k, p.dtype);
    const double bias = p.bias == nullptr ? 0.0 : load_element(p.bias, n, p.dtype);
    std::vector<double> s(p.m);
    for (int32_t m = 0; m < p.m; ++m) s[m] = dot(x[m], w) + bias;
    return s;
  };
  for (int64_t col = 0; col < cols; ++col) {
    const std::vector<double> acc = sums(col);
    const std::vector<double> up = silu ? sums(cols + col) : std::vector<double>();
    for (int32_t m = 0; m < p.m; ++m) {
      float v;
      if (silu) {  // round(silu(round(g))) * round(u), fp32
        const float g = round_to(acc[m], p.dtype);
        v = round_to(g / (1.f + std::exp(-g)), p.dtype) * round_to(up[m], p.dtype);
      } else {
        v = static_cast<float>(acc[m]);
      }
      const int64_t at = m * p.out_stride + col;
      if (p.out_float) {
        static_cast<float*>(p.out)[at] = round_to(v, p.dtype);
      } else {
        store_element(p.out, at, v, p.dtype);
      }
    }
  }
  return Status::kOk;
}

}  // namespace gsa::kernels
