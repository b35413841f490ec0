// A small strict JSON reader and string quoting (the safetensors header, tokenizer files, the serving API).
// No third-party library.
//
// Contract:
// - parse_json accepts exactly one RFC 8259 value surrounded by optional whitespace: objects, arrays, strings
//   (all escapes, \u surrogate pairs decoded to UTF-8, raw bytes must be valid UTF-8), numbers, true, false,
//   null. Integers without fraction or exponent that fit int64 become kInteger; other numbers become kFloat.
//   Duplicate object keys, trailing commas, comments, control characters in strings, nesting deeper than
//   kMaxJsonDepth and anything after the value are rejected. Errors throw gsa::Error "invalid JSON at byte N:
//   <reason>" (N counts from the start of the text).
// - Objects keep their keys in file order.
// - quote_json returns a JSON string literal (with quotes) for a UTF-8 string; it escapes '"', '\\' and
//   control characters and passes other bytes through unchanged.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gsa::json {

inline constexpr int kMaxJsonDepth = 128;

struct Value {
  enum class Kind { kNull, kBool, kInteger, kFloat, kString, kArray, kObject };

  Kind kind = Kind::kNull;
  bool bool_value = false;
  int64_t int_value = 0;
  double float_value = 0.0;
  std::string string_value;
  std::vector<Value> array_items;
  std::vector<std::pair<std::string, Value>> object_items;  // in file order, keys unique

  bool is_object() const { return kind == Kind::kObject; }
  bool is_array() const { return kind == Kind::kArray; }
  bool is_string() const { return kind == Kind::kString; }
  bool is_integer() const { return kind == Kind::kInteger; }

  // The member named key of an object, or nullptr (also when this is not an object).
  const Value* find(std::string_view key) const;
};

// "null", "bool", "integer", "number", "string", "array" or "object": for error messages.
const char* kind_name(Value::Kind kind);

Value parse_json(std::string_view text);

std::string quote_json(std::string_view text);

}  // namespace gsa::json
