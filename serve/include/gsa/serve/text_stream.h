// Completion text as it streams: the bytes of generated tokens in, valid UTF-8 deltas out, stop sequences cut.
//
// Contract:
// - append(bytes) adds one token's bytes and returns the text that is now final (possibly empty). Text is held
//   back while it could still become a stop sequence (its last max_stop_len - 1 bytes) or while it ends inside a
//   UTF-8 sequence that may still complete.
// - Invalid UTF-8 becomes U+FFFD per maximal invalid subsequence (to_valid_utf8 of unicode_text.h, the rule of
//   Python's bytes.decode("utf-8", "replace")); the concatenation of all deltas equals to_valid_utf8 of the
//   whole byte string (cut before the first stop sequence), however the bytes were split into tokens.
// - When a stop sequence appears, stopped() becomes true, the text ends just before it, and later appends
//   return "". finish() returns whatever was held back (call it once, at the end).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gsa::serve {

class TextStream {
 public:
  explicit TextStream(std::vector<std::string> stop = {});

  std::string append(std::string_view bytes);
  std::string finish();
  bool stopped() const { return stopped_; }
  const std::string& text() const { return text_; }  // every delta returned so far, concatenated

 private:
  std::string emit(size_t end);

  std::vector<std::string> stop_;
  size_t hold_ = 0;       // longest stop sequence - 1
  std::string raw_;       // every byte appended (cut at a stop sequence)
  size_t emitted_ = 0;    // raw_ bytes already turned into text
  std::string text_;
  bool stopped_ = false;
};

// Bytes at the end of `text` that form a proper prefix of a well-formed UTF-8 sequence (0-3).
size_t incomplete_utf8_tail(std::string_view text);

}  // namespace gsa::serve
