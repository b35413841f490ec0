// Tuning knobs read from the environment (A/B switches for benchmarks, docs/PERFORMANCE.md): an integer variable
// is either unset (the fallback) or a whole decimal integer >= min (gsa/config/parse_number.h's parse_int64, base
// 10); anything else throws gsa::Error naming the variable and the value, never a silent default.
#pragma once

#include <cstdint>

namespace gsa {

int64_t env_integer(const char* name, int64_t fallback, int64_t min);

}  // namespace gsa
