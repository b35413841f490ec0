// The tolerance policy of the test suite, written once (STYLE.md practice 13).
//
// expect_close(actual, expected, atol, rtol): every element satisfies |a - e| <= atol + rtol * |e|, computed in
// float64 on the CPU; non-finite expected values must be matched exactly; prints the first 10 mismatches with
// their indices. Per-dtype defaults: fp32 paths vs a float64 oracle use kFp32Atol/kFp32Rtol; bf16 paths kBf16*.
#pragma once

#include <string>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace gsa::test {

constexpr double kFp32Atol = 2e-5;
constexpr double kFp32Rtol = 2e-4;
constexpr double kBf16Atol = 2e-2;
constexpr double kBf16Rtol = 2e-2;
// Half-precision kernels vs a float64 oracle on the same (rounded) inputs: ||actual - expected|| / ||expected||.
constexpr double kBf16RelErr = 2e-2;
constexpr double kFp16RelErr = 5e-3;

::testing::AssertionResult all_close(const at::Tensor& actual, const at::Tensor& expected, double atol, double rtol);

// ||actual - expected|| / ||expected|| <= max_rel (float64 on the CPU; any NaN fails). The bound for a dtype:
// kBf16RelErr / kFp16RelErr.
::testing::AssertionResult relative_error_below(const at::Tensor& actual, const at::Tensor& expected, double max_rel);

// One ulp of a bf16 / fp16 `dtype` at |v| (the spacing of its representable values there), float64.
at::Tensor ulp_of(const at::Tensor& v, at::ScalarType dtype);

// Every |got - expected| <= one ulp of `dtype` (at the larger of the two) + slack (a tensor of got's shape, or
// undefined for none); float64 on the CPU; non-finite results fail; prints the first 10 mismatches with their flat
// indices. For kernels that round once, after an fp32 sum whose error `slack` bounds.
::testing::AssertionResult within_ulp(const at::Tensor& got, const at::Tensor& expected, at::ScalarType dtype,
                                      const at::Tensor& slack = {});

#define GSA_EXPECT_CLOSE(actual, expected, atol, rtol) \
  EXPECT_TRUE(::gsa::test::all_close((actual), (expected), (atol), (rtol)))

// The devices the device-parametrised tests run on: CPU, plus CUDA when a device is present.
std::vector<at::Device> test_devices();

}  // namespace gsa::test
