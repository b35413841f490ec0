#include "gsa/runtime/json_reader.h"

#include <cerrno>
#include <cstdlib>
#include <unordered_set>

#include "gsa/runtime/error.h"
#include "gsa/runtime/unicode_text.h"

namespace gsa::json {
namespace {

// Recursive descent over the text; pos_ is the next unread byte.
class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Value parse_document() {
    skip_whitespace();
    Value value = parse_value(0);
    skip_whitespace();
    if (pos_ != text_.size()) fail("unexpected '", printable(text_[pos_]), "' after the top-level value");
    return value;
  }

 private:
  template <typename... Args>
  [[noreturn]] void fail(const Args&... args) const {
    throw Error(str_cat("invalid JSON at byte ", pos_, ": ", args...));
  }

  static std::string printable(char c) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7f) return std::string(1, c);
    return str_cat("\\x", "0123456789abcdef"[byte >> 4], "0123456789abcdef"[byte & 15]);
  }

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return text_[pos_]; }

  void skip_whitespace() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++pos_;
  }

  void expect(char c, const char* what) {
    if (at_end()) fail("unexpected end of text, expected ", what);
    if (peek() != c) fail("expected ", what, ", got '", printable(peek()), "'");
    ++pos_;
  }

  Value parse_value(int depth) {
    if (depth >= kMaxJsonDepth) fail("nesting deeper than ", kMaxJsonDepth);
    if (at_end()) fail("unexpected end of text, expected a value");
    Value value;
    switch (peek()) {
      case '{':
        parse_object(depth, &value);
        return value;
      case '[':
        parse_array(depth, &value);
        return value;
      case '"':
        value.kind = Value::Kind::kString;
        value.string_value = parse_string();
        return value;
      case 't':
        parse_literal("true");
        value.kind = Value::Kind::kBool;
        value.bool_value = true;
        return value;
      case 'f':
        parse_literal("false");
        value.kind = Value::Kind::kBool;
        return value;
      case 'n':
        parse_literal("null");
        return value;
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) {
          parse_number(&value);
          return value;
        }
        fail("unexpected '", printable(peek()), "', expected a value");
    }
  }

  void parse_literal(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) fail("invalid literal, expected '", word, "'");
    pos_ += word.size();
  }

  void parse_object(int depth, Value* out) {
    out->kind = Value::Kind::kObject;
    ++pos_;  // '{'
    skip_whitespace();
    if (!at_end() && peek() == '}') {
      ++pos_;
      return;
    }
    // Keys seen so far: a hash set, so objects with many members (a tokenizer vocabulary) parse in linear time.
    std::unordered_set<std::string> keys;
    while (true) {
      skip_whitespace();
      if (at_end() || peek() != '"') {
        expect('"', "a string key");
      }
      const size_t key_pos = pos_;
      std::string key = parse_string();
      if (!keys.insert(key).second) {
        pos_ = key_pos;
        fail("duplicate key \"", key, "\"");
      }
      skip_whitespace();
      expect(':', "':' after an object key");
      skip_whitespace();
      Value member = parse_value(depth + 1);
      out->object_items.emplace_back(std::move(key), std::move(member));
      skip_whitespace();
      if (!at_end() && peek() == ',') {
        ++pos_;
        continue;
      }
      expect('}', "',' or '}' in an object");
      return;
    }
  }

  void parse_array(int depth, Value* out) {
    out->kind = Value::Kind::kArray;
    ++pos_;  // '['
    skip_whitespace();
    if (!at_end() && peek() == ']') {
      ++pos_;
      return;
    }
    while (true) {
      skip_whitespace();
      out->array_items.push_back(parse_value(depth + 1));
      skip_whitespace();
      if (!at_end() && peek() == ',') {
        ++pos_;
        continue;
      }
      expect(']', "',' or ']' in an array");
      return;
    }
  }

  // Four hex digits after "\u".
  uint32_t parse_hex4() {
    uint32_t code = 0;
    for (int i = 0; i < 4; ++i) {
      if (at_end()) fail("unexpected end of text in a \\u escape");
      const char c = peek();
      uint32_t digit = 0;
      if (c >= '0' && c <= '9') {
        digit = static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        digit = static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        digit = static_cast<uint32_t>(c - 'A' + 10);
      } else {
        fail("invalid hex digit '", printable(c), "' in a \\u escape");
      }
      code = code * 16 + digit;
      ++pos_;
    }
    return code;
  }

  // One escape after the backslash.
  void parse_escape(std::string* out) {
    if (at_end()) fail("unexpected end of text in an escape");
    const char c = peek();
    ++pos_;
    switch (c) {
      case '"': out->push_back('"'); return;
      case '\\': out->push_back('\\'); return;
      case '/': out->push_back('/'); return;
      case 'b': out->push_back('\b'); return;
      case 'f': out->push_back('\f'); return;
      case 'n': out->push_back('\n'); return;
      case 'r': out->push_back('\r'); return;
      case 't': out->push_back('\t'); return;
      case 'u': break;
      default: --pos_; fail("invalid escape '\\", printable(c), "'");
    }
    uint32_t code = parse_hex4();
    if (code >= 0xdc00 && code <= 0xdfff) fail("unpaired low surrogate in a \\u escape");
    if (code >= 0xd800 && code <= 0xdbff) {
      if (text_.substr(pos_, 2) != "\\u") fail("high surrogate not followed by a \\u low surrogate");
      pos_ += 2;
      const uint32_t low = parse_hex4();
      if (low < 0xdc00 || low > 0xdfff) fail("high surrogate not followed by a low surrogate");
      code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
    }
    unicode::append_utf8(code, out);
  }

  // One raw UTF-8 sequence starting at a byte >= 0x80; rejects overlong forms, surrogates and > U+10FFFF.
  void copy_utf8_sequence(std::string* out) {
    const unicode::DecodedChar decoded = unicode::decode_utf8_at(text_, pos_);
    if (decoded.code == unicode::kInvalidByte) fail("invalid UTF-8 sequence in a string");
    out->append(text_.substr(pos_, decoded.length));
    pos_ += decoded.length;
  }

  std::string parse_string() {
    ++pos_;  // opening quote
    std::string out;
    while (true) {
      if (at_end()) fail("unterminated string");
      const char c = peek();
      const auto byte = static_cast<unsigned char>(c);
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c == '\\') {
        ++pos_;
        parse_escape(&out);
      } else if (byte < 0x20) {
        fail("control character ", printable(c), " in a string (must be escaped)");
      } else if (byte >= 0x80) {
        copy_utf8_sequence(&out);
      } else {
        out.push_back(c);
        ++pos_;
      }
    }
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  void parse_number(Value* out) {
    const size_t start = pos_;
    auto digits = [this]() {
      size_t count = 0;
      while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_, ++count;
      return count;
    };
    if (peek() == '-') ++pos_;
    if (at_end()) fail("unexpected end of text in a number");
    if (peek() == '0') {
      ++pos_;
      if (!at_end() && peek() >= '0' && peek() <= '9') fail("leading zero in a number");
    } else if (digits() == 0) {
      fail("expected a digit in a number");
    }
    bool integral = true;
    if (!at_end() && peek() == '.') {
      ++pos_;
      integral = false;
      if (digits() == 0) fail("expected a digit after '.' in a number");
    }
    if (!at_end() && (peek() == 'e' || peek() == 'E')) {
      ++pos_;
      integral = false;
      if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
      if (digits() == 0) fail("expected a digit in the exponent of a number");
    }
    const std::string literal(text_.substr(start, pos_ - start));
    errno = 0;
    if (integral) {
      const long long parsed = std::strtoll(literal.c_str(), nullptr, 10);
      if (errno == ERANGE) {
        pos_ = start;
        fail("integer ", literal, " does not fit in int64");
      }
      out->kind = Value::Kind::kInteger;
      out->int_value = static_cast<int64_t>(parsed);
    } else {
      out->kind = Value::Kind::kFloat;
      out->float_value = std::strtod(literal.c_str(), nullptr);
    }
  }

  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

const Value* Value::find(std::string_view key) const {
  for (const auto& [name, value] : object_items) {
    if (name == key) return &value;
  }
  return nullptr;
}

const char* kind_name(Value::Kind kind) {
  switch (kind) {
    case Value::Kind::kNull: return "null";
    case Value::Kind::kBool: return "bool";
    case Value::Kind::kInteger: return "integer";
    case Value::Kind::kFloat: return "number";
    case Value::Kind::kString: return "string";
    case Value::Kind::kArray: return "array";
    case Value::Kind::kObject: return "object";
  }
  return "unknown";
}

Value parse_json(std::string_view text) { return Parser(text).parse_document(); }

std::string quote_json(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('"');
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (byte < 0x20) {
          out += "\\u00";
          out.push_back("0123456789abcdef"[byte >> 4]);
          out.push_back("0123456789abcdef"[byte & 15]);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace gsa::json
