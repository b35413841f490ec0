#include "common/tolerance.h"

#include <algorithm>
#include <sstream>

namespace gsa::test {

::testing::AssertionResult all_close(const at::Tensor& actual, const at::Tensor& expected, double atol, double rtol) {
  if (actual.sizes() != expected.sizes()) {
    return ::testing::AssertionFailure() << "shape " << actual.sizes() << " != expected " << expected.sizes();
  }
  at::Tensor a = actual.detach().to(at::kCPU, at::kDouble).contiguous().flatten();
  at::Tensor e = expected.detach().to(at::kCPU, at::kDouble).contiguous().flatten();
  const double* pa = a.data_ptr<double>();
  const double* pe = e.data_ptr<double>();
  int64_t bad = 0;
  double worst = 0;
  std::ostringstream msg;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const bool finite = std::isfinite(pe[i]);
    const double err = std::abs(pa[i] - pe[i]);
    const bool ok = finite ? err <= atol + rtol * std::abs(pe[i]) : (pa[i] == pe[i] || (std::isnan(pa[i]) && std::isnan(pe[i])));
    if (!ok) {
      if (bad < 10) msg << "\n  [" << i << "] actual " << pa[i] << " expected " << pe[i] << " (err " << err << ")";
      ++bad;
    }
    if (finite) worst = std::max(worst, err);
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << a.numel() << " elements differ beyond atol " << atol
                                       << " + rtol " << rtol << " (max abs err " << worst << "):" << msg.str();
}

::testing::AssertionResult relative_error_below(const at::Tensor& actual, const at::Tensor& expected, double max_rel) {
  if (actual.sizes() != expected.sizes()) {
    return ::testing::AssertionFailure() << "shape " << actual.sizes() << " vs expected " << expected.sizes();
  }
  const at::Tensor a = actual.detach().cpu().to(at::kDouble), e = expected.detach().cpu().to(at::kDouble);
  if (a.isnan().any().item<bool>()) return ::testing::AssertionFailure() << "NaN in the result";
  const double err = (a - e).norm().item<double>(), ref = e.norm().item<double>();
  const double rel = ref > 0 ? err / ref : err;
  if (rel <= max_rel) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "relative error " << rel << " > " << max_rel << " (|diff| " << err
                                       << ", |expected| " << ref << ")";
}

std::vector<at::Device> test_devices() {
  std::vector<at::Device> devices{at::kCPU};
  if (at::hasCUDA()) devices.emplace_back(at::kCUDA, 0);
  return devices;
}

at::Tensor ulp_of(const at::Tensor& v, at::ScalarType dtype) {
  const double mantissa_bits = dtype == at::kBFloat16 ? 7 : 10, min_exponent = dtype == at::kBFloat16 ? -126 : -14;
  return at::exp2(at::floor(at::log2(v.abs())).clamp_min(min_exponent) - mantissa_bits);
}

::testing::AssertionResult within_ulp(const at::Tensor& got, const at::Tensor& expected, at::ScalarType dtype,
                                      const at::Tensor& slack) {
  if (got.sizes() != expected.sizes()) {
    return ::testing::AssertionFailure() << "shape " << got.sizes() << " != expected " << expected.sizes();
  }
  const at::Tensor g = got.cpu().to(at::kDouble).flatten(), e = expected.cpu().to(at::kDouble).flatten();
  if (!at::isfinite(g).all().item<bool>()) return ::testing::AssertionFailure() << "non-finite values in the result";
  at::Tensor bound = ulp_of(at::maximum(g.abs(), e.abs()), dtype);
  if (slack.defined()) bound = bound + slack.cpu().to(at::kDouble).flatten();
  const at::Tensor bad = ((g - e).abs() > bound).nonzero().flatten();
  if (bad.numel() == 0) return ::testing::AssertionSuccess();
  std::ostringstream msg;
  msg << bad.numel() << " of " << g.numel() << " elements beyond one ulp + slack:";
  for (int64_t i = 0; i < std::min<int64_t>(bad.numel(), 10); ++i) {
    const int64_t at = bad[i].item<int64_t>();
    msg << "\n  [" << at << "] got " << g[at].item<double>() << " expected " << e[at].item<double>() << " bound "
        << bound[at].item<double>();
  }
  return ::testing::AssertionFailure() << msg.str();
}

}  // namespace gsa::test
