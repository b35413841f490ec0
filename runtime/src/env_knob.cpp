#include "gsa/runtime/env_knob.h"

#include <cerrno>
#include <cstdlib>

#include "gsa/runtime/error.h"

namespace gsa {

int64_t env_integer(const char* name, int64_t fallback, int64_t min) {
  const char* v = std::getenv(name);
  if (v == nullptr) return fallback;
  char* end = nullptr;
  errno = 0;
  const long long n = std::strtoll(v, &end, 10);
  GSA_CHECK(end != v && *end == '\0' && errno == 0 && n >= min, name, " must be an integer of at least ", min,
            ", got '", v, "'");
  return static_cast<int64_t>(n);
}

}  // namespace gsa
