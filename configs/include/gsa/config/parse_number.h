// Numbers read from text that a user wrote (--set overrides, environment knobs): the whole text must be the
// number, with no surrounding whitespace; false (out untouched) for anything else, out-of-range values included.
// parse_int64 takes `base` as strtoll does (0: decimal, 0x hex or 0 octal; 10: decimal only); parse_uint64 refuses
// a sign '-'; parse_double takes what strtod takes.
#pragma once

#include <cstdint>
#include <string>

namespace gsa {

bool parse_int64(const std::string& text, int64_t& out, int base = 0);
bool parse_uint64(const std::string& text, uint64_t& out);
bool parse_double(const std::string& text, double& out);

}  // namespace gsa
