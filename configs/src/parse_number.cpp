#include "gsa/config/parse_number.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>

namespace gsa {
namespace {

// `convert` (a strto* call) over the whole of text: false for empty text, leading whitespace, trailing characters
// or a conversion that set errno (out of range); out is written only on success.
template <typename T, typename Convert>
bool parse_whole(const std::string& text, T& out, Convert convert) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return false;
  errno = 0;
  char* end = nullptr;
  const auto value = convert(text.c_str(), &end);
  if (errno != 0 || end != text.c_str() + text.size()) return false;
  out = value;
  return true;
}

}  // namespace

bool parse_int64(const std::string& text, int64_t& out, int base) {
  return parse_whole(text, out, [base](const char* s, char** end) { return std::strtoll(s, end, base); });
}

bool parse_uint64(const std::string& text, uint64_t& out) {
  if (!text.empty() && text[0] == '-') return false;  // strtoull would wrap it around
  return parse_whole(text, out, [](const char* s, char** end) { return std::strtoull(s, end, 0); });
}

bool parse_double(const std::string& text, double& out) {
  return parse_whole(text, out, [](const char* s, char** end) { return std::strtod(s, end); });
}

}  // namespace gsa
