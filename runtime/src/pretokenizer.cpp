#include "pretokenizer.h"

#include <cstdint>

#include "gsa/runtime/error.h"
#include "gsa/runtime/unicode_text.h"

namespace gsa {
namespace {

// The exact pattern strings as Llama-3 and Qwen2 ship them in tokenizer.json (after JSON unescaping).
const char kLlama3Regex[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char kQwen2Regex[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

enum CharClass : uint8_t {
  kLetter = 1,   // \p{L}
  kNumber = 2,   // \p{N}
  kSpace = 4,    // \s
  kNewline = 8,  // \r or \n (also kSpace)
};

struct Char {
  size_t offset;  // byte offset in the text
  char32_t code;  // unicode::kInvalidByte for an invalid byte
  uint8_t cls;    // CharClass bits
};

// One match of the regex per call, from a given character; the alternatives are tried in the regex's order and
// the first that matches wins (leftmost-first), each with the extent its greedy quantifiers settle on.
class Matcher {
 public:
  Matcher(std::string_view text, SplitPattern pattern) : max_digits_(pattern == SplitPattern::kLlama3 ? 3 : 1) {
    for (size_t pos = 0; pos < text.size();) {
      const unicode::DecodedChar c = unicode::decode_utf8_at(text, pos);
      uint8_t cls = 0;
      if (unicode::is_letter(c.code)) cls |= kLetter;
      if (unicode::is_number(c.code)) cls |= kNumber;
      if (unicode::is_white_space(c.code)) cls |= kSpace;
      if (c.code == '\r' || c.code == '\n') cls |= kNewline;
      chars_.push_back({pos, c.code, cls});
      pos += c.length;
    }
    end_offset_ = text.size();
  }

  size_t size() const { return chars_.size(); }
  size_t offset(size_t i) const { return i < chars_.size() ? chars_[i].offset : end_offset_; }

  // End (exclusive, in characters) of the match that starts at character i < size().
  size_t match_at(size_t i) const {
    // 1. (?i:'s|'t|'re|'ve|'m|'ll|'d)
    if (chars_[i].code == '\'' && i + 1 < size()) {
      const char32_t a = fold(chars_[i + 1].code);
      if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
      if (i + 2 < size()) {
        const char32_t b = fold(chars_[i + 2].code);
        if (((a == 'r' || a == 'v') && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
      }
    }
    // 2. [^\r\n\p{L}\p{N}]?\p{L}+ (the optional character is taken when a letter follows it)
    if (has(i, kLetter)) return run_end(i, kLetter);
    if (!has(i, kNewline | kLetter | kNumber) && i + 1 < size() && has(i + 1, kLetter)) {
      return run_end(i + 1, kLetter);
    }
    // 3. \p{N}{1,3} (Llama-3) or \p{N} (Qwen2)
    if (has(i, kNumber)) {
      size_t end = i + 1;
      while (end < size() && end - i < max_digits_ && has(end, kNumber)) ++end;
      return end;
    }
    // 4. " ?[^\s\p{L}\p{N}]+[\r\n]*"
    size_t start = i;
    if (chars_[i].code == ' ' && i + 1 < size() && is_punctuation(i + 1)) start = i + 1;
    if (is_punctuation(start)) {
      size_t end = start;
      while (end < size() && is_punctuation(end)) ++end;
      return run_end(end, kNewline);
    }
    // Only whitespace is left; j is the end of its run.
    const size_t j = run_end(i, kSpace);
    // 5. \s*[\r\n]+ : \s* backs off until [\r\n]+ can start, i.e. the match ends after the run's last \r or \n.
    for (size_t k = j; k > i; --k) {
      if (has(k - 1, kNewline)) return k;
    }
    // 6. \s+(?!\S) : the whole run at the end of the text, else the run less its last character.
    if (j == size()) return j;
    if (j - i >= 2) return j - 1;
    // 7. \s+
    return j;
  }

 private:
  bool has(size_t i, uint8_t bits) const { return (chars_[i].cls & bits) != 0; }
  bool is_punctuation(size_t i) const { return i < size() && !has(i, kSpace | kLetter | kNumber); }
  size_t run_end(size_t i, uint8_t bits) const {
    while (i < size() && has(i, bits)) ++i;
    return i;
  }
  // Simple case folding, for the letters of the contractions: ASCII upper case, and U+017F LATIN SMALL LETTER
  // LONG S, which folds to 's' (no other code point folds to one of s t r e v m l d).
  static char32_t fold(char32_t code) {
    if (code >= 'A' && code <= 'Z') return code - 'A' + 'a';
    if (code == 0x17F) return 's';
    return code;
  }

  size_t max_digits_;
  std::vector<Char> chars_;
  size_t end_offset_ = 0;
};

}  // namespace

SplitPattern split_pattern_for_regex(const std::string& regex, const std::string& where) {
  if (regex == kLlama3Regex) return SplitPattern::kLlama3;
  if (regex == kQwen2Regex) return SplitPattern::kQwen2;
  throw Error(str_cat(where, ": unsupported pre-tokenizer regex ", regex,
                      "; supported: the Llama-3 and Qwen2 patterns (", kLlama3Regex, " and the same with \\p{N} "
                      "in place of \\p{N}{1,3})"));
}

const char* split_pattern_name(SplitPattern pattern) {
  return pattern == SplitPattern::kLlama3 ? "Llama-3" : "Qwen2";
}

std::vector<std::string_view> split_pretokens(std::string_view text, SplitPattern pattern) {
  const Matcher matcher(text, pattern);
  std::vector<std::string_view> pieces;
  for (size_t i = 0; i < matcher.size();) {
    const size_t end = matcher.match_at(i);
    pieces.push_back(text.substr(matcher.offset(i), matcher.offset(end) - matcher.offset(i)));
    i = end;
  }
  return pieces;
}

}  // namespace gsa
