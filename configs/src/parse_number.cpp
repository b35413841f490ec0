#include "gsa/config/parse_number.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>

namespace gsa {

bool parse_int64(const std::string& text, int64_t& out, int base) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return false;
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, base);
  if (errno != 0 || end != text.c_str() + text.size()) return false;
  out = value;
  return true;
}

bool parse_uint64(const std::string& text, uint64_t& out) {
  if (text.empty() || text[0] == '-' || std::isspace(static_cast<unsigned char>(text[0]))) return false;
  errno = 0;
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text.c_str(), &end, 0);
  if (errno != 0 || end != text.c_str() + text.size()) return false;
  out = value;
  return true;
}

bool parse_double(const std::string& text, double& out) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return false;
  errno = 0;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (errno == ERANGE || end != text.c_str() + text.size()) return false;
  out = value;
  return true;
}

}  // namespace gsa
