#include "gsa/runtime/env_knob.h"

#include <cstdlib>
#include <string>

#include "gsa/config/parse_number.h"
#include "gsa/runtime/error.h"

namespace gsa {

int64_t env_integer(const char* name, int64_t fallback, int64_t min) {
  const char* v = std::getenv(name);
  if (v == nullptr) return fallback;
  int64_t n = 0;
  GSA_CHECK(parse_int64(v, n, /*base=*/10) && n >= min, name, " must be an integer of at least ", min, ", got '", v,
            "'");
  return n;
}

}  // namespace gsa
