#include "common/tolerance.h"

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

}  // namespace gsa::test
