// A small tokenizer and state machine over protobuf text format: enough to track the enclosing messages
// (`name {` / `name: {` / `name <` ... `}`) and the field whose name was read last. It skips comments,
// strings (with escapes), numbers and `[...]` extension names and lists.
#include "field_scan.h"

#include <cctype>
#include <cstddef>

namespace gsa::config_detail {
namespace {

enum class TokenKind { kIdentifier, kNumber, kString, kSymbol, kEnd };

struct Token {
  TokenKind kind = TokenKind::kEnd;
  std::string text;
  int line = 0;
  int column = 0;
};

class Scanner {
 public:
  explicit Scanner(const std::string& text) : text_(text) {}

  Token next() {
    skip_space_and_comments();
    Token token;
    token.line = line_;
    token.column = column_;
    if (pos_ >= text_.size()) return token;
    const char c = text_[pos_];
    const size_t start = pos_;
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      while (pos_ < text_.size() && is_word_char(text_[pos_])) advance();
      token.kind = TokenKind::kIdentifier;
    } else if (std::isdigit(static_cast<unsigned char>(c)) || (c == '.' && next_is_digit())) {
      // Numbers, including 1e-5, 0x1F and suffixes like 1.5f: take the word characters, dots and exponent signs.
      while (pos_ < text_.size()) {
        const char d = text_[pos_];
        const bool exponent_sign =
            (d == '-' || d == '+') && pos_ > start && (text_[pos_ - 1] == 'e' || text_[pos_ - 1] == 'E');
        if (!is_word_char(d) && d != '.' && !exponent_sign) break;
        advance();
      }
      token.kind = TokenKind::kNumber;
    } else if (c == '"' || c == '\'') {
      advance();
      while (pos_ < text_.size() && text_[pos_] != c && text_[pos_] != '\n') {
        if (text_[pos_] == '\\' && pos_ + 1 < text_.size() && text_[pos_ + 1] != '\n') advance();
        advance();
      }
      if (pos_ < text_.size() && text_[pos_] == c) advance();
      token.kind = TokenKind::kString;
    } else {
      advance();
      token.kind = TokenKind::kSymbol;
    }
    token.text = text_.substr(start, pos_ - start);
    return token;
  }

 private:
  static bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

  bool next_is_digit() const {
    return pos_ + 1 < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_ + 1]));
  }

  void advance() {
    const char c = text_[pos_++];
    if (c == '\n') {
      ++line_;
      column_ = 0;
    } else if (c == '\t') {
      column_ += 8 - column_ % 8;
    } else {
      ++column_;
    }
  }

  void skip_space_and_comments() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == '#') {
        while (pos_ < text_.size() && text_[pos_] != '\n') advance();
      } else if (std::isspace(static_cast<unsigned char>(c))) {
        advance();
      } else {
        return;
      }
    }
  }

  const std::string& text_;
  size_t pos_ = 0;
  int line_ = 0;
  int column_ = 0;
};

bool at_or_after(const Token& token, TextPosition p) {
  return token.line > p.line || (token.line == p.line && token.column >= p.column);
}

bool is_open(const Token& t) { return t.kind == TokenKind::kSymbol && (t.text == "{" || t.text == "<"); }
bool is_close(const Token& t) { return t.kind == TokenKind::kSymbol && (t.text == "}" || t.text == ">"); }
bool is_symbol(const Token& t, const char* s) { return t.kind == TokenKind::kSymbol && t.text == s; }

}  // namespace

FieldAtPosition field_at(const std::string& text, TextPosition position) {
  enum class State { kField, kAfterName, kValue, kAfterValue };
  Scanner scanner(text);
  std::vector<std::string> enclosing;
  std::vector<TextPosition> enclosing_names;  // where each enclosing message's field name starts
  std::string current;                        // the field whose name was read last in the innermost message
  FieldAtPosition result;
  State state = State::kField;
  int bracket_depth = 0;  // inside `[...]`: an extension name or a list value
  for (Token token = scanner.next(); token.kind != TokenKind::kEnd; token = scanner.next()) {
    if (at_or_after(token, position)) break;
    result.last_token = {token.line, token.column};
    if (bracket_depth > 0) {
      if (is_symbol(token, "[")) ++bracket_depth;
      if (is_symbol(token, "]")) --bracket_depth;
      continue;
    }
    bool reprocess = true;
    while (reprocess) {
      reprocess = false;
      switch (state) {
        case State::kField:
          if (token.kind == TokenKind::kIdentifier) {
            current = token.text;
            result.name = {token.line, token.column};
            state = State::kAfterName;
          } else if (is_symbol(token, "[")) {
            current = "[extension]";
            result.name = {token.line, token.column};
            bracket_depth = 1;
            state = State::kAfterName;
          } else if (is_close(token)) {
            if (!enclosing.empty()) {
              current = enclosing.back();
              result.name = enclosing_names.back();
              enclosing.pop_back();
              enclosing_names.pop_back();
            }
          }
          break;
        case State::kAfterName:
          if (is_symbol(token, ":")) {
            state = State::kValue;
          } else if (is_open(token)) {
            enclosing.push_back(current);
            enclosing_names.push_back(result.name);
            current.clear();
            state = State::kField;
          } else {
            state = State::kField;
            reprocess = true;
          }
          break;
        case State::kValue:
          if (is_open(token)) {
            enclosing.push_back(current);
            enclosing_names.push_back(result.name);
            current.clear();
            state = State::kField;
          } else if (is_symbol(token, "[")) {
            bracket_depth = 1;
            state = State::kField;
          } else if (!is_symbol(token, "-")) {
            state = State::kAfterValue;
          }
          break;
        case State::kAfterValue:
          if (token.kind != TokenKind::kString) {  // adjacent strings concatenate
            state = State::kField;
            reprocess = true;
          }
          break;
      }
    }
  }
  result.open_messages = enclosing.size();
  result.path = enclosing;
  if (!current.empty()) result.path.push_back(current);
  return result;
}

}  // namespace gsa::config_detail
