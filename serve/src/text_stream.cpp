#include "gsa/serve/text_stream.h"

#include <algorithm>

#include "gsa/runtime/unicode_text.h"

namespace gsa::serve {

size_t incomplete_utf8_tail(std::string_view text) {
  // Walks back over at most 3 continuation bytes to the lead byte; the tail is incomplete when the lead byte needs
  // more bytes than follow it and every byte after it is what a well-formed sequence allows there (RFC 3629).
  for (size_t k = 1; k <= 3 && k <= text.size(); ++k) {
    const auto lead = static_cast<unsigned char>(text[text.size() - k]);
    if ((lead & 0xC0) == 0x80) continue;  // continuation byte: keep walking back
    const size_t need = lead >= 0xC2 && lead <= 0xDF ? 2 : lead >= 0xE0 && lead <= 0xEF ? 3
                        : lead >= 0xF0 && lead <= 0xF4 ? 4 : 0;
    if (need <= k) return 0;  // complete, or not a lead byte at all
    if (k >= 2) {
      const auto second = static_cast<unsigned char>(text[text.size() - k + 1]);
      const unsigned char lo = lead == 0xE0 ? 0xA0 : lead == 0xF0 ? 0x90 : 0x80;
      const unsigned char hi = lead == 0xED ? 0x9F : lead == 0xF4 ? 0x8F : 0xBF;
      if (second < lo || second > hi) return 0;
    }
    return k;
  }
  return 0;
}

TextStream::TextStream(std::vector<std::string> stop) : stop_(std::move(stop)) {
  for (const std::string& s : stop_) hold_ = std::max(hold_, s.size() - 1);
}

std::string TextStream::emit(size_t end) {
  if (end <= emitted_) return "";
  std::string delta = unicode::to_valid_utf8(std::string_view(raw_).substr(emitted_, end - emitted_));
  emitted_ = end;
  text_ += delta;
  return delta;
}

std::string TextStream::append(std::string_view bytes) {
  if (stopped_) return "";
  raw_.append(bytes.data(), bytes.size());
  size_t first = std::string::npos;
  for (const std::string& s : stop_) {
    // A stop sequence cannot begin before emitted_: the text before it was held back.
    const size_t at = raw_.find(s, emitted_);
    first = std::min(first, at);
  }
  if (first != std::string::npos) {
    stopped_ = true;
    raw_.resize(first);
    return emit(first);
  }
  size_t end = raw_.size() > emitted_ + hold_ ? raw_.size() - hold_ : emitted_;
  end -= incomplete_utf8_tail(std::string_view(raw_).substr(0, end));
  return emit(end);
}

std::string TextStream::finish() { return emit(raw_.size()); }

}  // namespace gsa::serve
