// Private to the CPU reference twins: bf16 / fp16 storage read as double and written back with round-to-nearest-
// even, without any framework.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "gsa/kernels/sparse_attention.h"  // DType

namespace gsa::kernels::detail {

inline double load_element(const void* base, int64_t i, DType dtype) {
  const uint16_t bits = static_cast<const uint16_t*>(base)[i];
  if (dtype == DType::kBFloat16) {
    const uint32_t word = uint32_t(bits) << 16;
    float f;
    std::memcpy(&f, &word, sizeof f);
    return f;
  }
  const uint32_t sign = (bits >> 15) & 1, exponent = (bits >> 10) & 0x1f, mantissa = bits & 0x3ff;
  double value;
  if (exponent == 0)
    value = std::ldexp(double(mantissa), -24);
  else if (exponent == 31)
    value = mantissa ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  else
    value = std::ldexp(double(mantissa | 0x400), int(exponent) - 25);
  return sign ? -value : value;
}

inline void store_element(void* base, int64_t i, double value, DType dtype) {
  const float f = static_cast<float>(value);
  uint16_t bits;
  if (dtype == DType::kBFloat16) {
    uint32_t word;
    std::memcpy(&word, &f, sizeof word);
    if (std::isnan(f))
      bits = 0x7fc0;
    else
      bits = uint16_t((word + 0x7fff + ((word >> 16) & 1)) >> 16);  // round to nearest even
  } else {
    // float -> half, round to nearest even, via the exactly representable double arithmetic.
    const double a = std::fabs(double(f));
    const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
    if (std::isnan(f))
      bits = 0x7e00;
    else if (a >= 65520.0)
      bits = sign | 0x7c00;
    else if (a < std::ldexp(1.0, -14))
      bits = sign | uint16_t(std::nearbyint(a * std::ldexp(1.0, 24)));
    else {
      int e;
      const double m = std::frexp(a, &e);                    // a = m * 2^e, m in [0.5, 1)
      uint32_t mant = uint32_t(std::nearbyint(m * 2048.0));  // 11 bits incl. the implicit one
      if (mant == 2048) {
        mant = 1024;
        ++e;
      }
      bits = sign | uint16_t(((e + 14) << 10) | (mant & 0x3ff));
      if (e + 14 >= 31) bits = sign | 0x7c00;
    }
  }
  static_cast<uint16_t*>(base)[i] = bits;
}

}  // namespace gsa::kernels::detail
