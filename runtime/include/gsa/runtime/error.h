// Error reporting for the runtime and everything above it.
//
// Contract: invariants and bad inputs (a malformed file, a config the model cannot run, a tensor of the wrong
// shape) throw gsa::Error, whose message names what was wrong and where (file, field, tensor, value). Nothing
// in the libraries calls exit(); the launcher catches gsa::Error at the top and prints its message.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace gsa {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
inline void append_all(std::ostringstream&) {}
template <typename T, typename... Rest>
void append_all(std::ostringstream& out, const T& first, const Rest&... rest) {
  out << first;
  append_all(out, rest...);
}
}  // namespace detail

// Concatenates its arguments with operator<< into one string.
template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream out;
  detail::append_all(out, args...);
  return out.str();
}

}  // namespace gsa

// GSA_CHECK(cond, parts...): throws gsa::Error("parts...") when cond is false. Always a statement.
#define GSA_CHECK(cond, ...)                                                   \
  do {                                                                         \
    if (!(cond)) {                                                             \
      throw ::gsa::Error(::gsa::str_cat(__VA_ARGS__));                         \
    }                                                                          \
  } while (0)
