#include "gsa/runtime/unicode_text.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <utility>
#include <vector>

namespace gsa::unicode {
namespace {

struct CodepointRange {
  char32_t first, last;
};
struct CombiningClassRange {
  char32_t first, last;
  uint8_t ccc;
};
struct Decomposition {
  char32_t code;
  uint16_t offset;  // into kDecompositionData
  uint8_t length;
};
struct Composition {
  uint64_t pair;  // first << 21 | second
  char32_t composite;
};

#include "unicode_class_tables.inc"
#include "unicode_composition_tables.inc"
#include "unicode_decomposition_tables.inc"

template <size_t N>
bool in_ranges(const CodepointRange (&ranges)[N], char32_t code) {
  const CodepointRange* end = ranges + N;
  // The first range whose last >= code; code is inside when that range also starts at or before it.
  const CodepointRange* it =
      std::lower_bound(ranges, end, code, [](const CodepointRange& r, char32_t c) { return r.last < c; });
  return it != end && it->first <= code;
}

// Hangul syllable arithmetic (Unicode 3.12).
constexpr char32_t kHangulS = 0xAC00, kHangulL = 0x1100, kHangulV = 0x1161, kHangulT = 0x11A7;
constexpr char32_t kHangulLCount = 19, kHangulVCount = 21, kHangulTCount = 28;
constexpr char32_t kHangulNCount = kHangulVCount * kHangulTCount, kHangulSCount = kHangulLCount * kHangulNCount;

// Invalid bytes travel through NFC as these private values (above U+10FFFF): ccc 0, no decomposition or
// composition.
constexpr char32_t kRawByteBase = 0x110000;

uint8_t combining_class(char32_t code) {
  const CombiningClassRange* end = kCombiningClasses + std::size(kCombiningClasses);
  const CombiningClassRange* it = std::lower_bound(
      kCombiningClasses, end, code, [](const CombiningClassRange& r, char32_t c) { return r.last < c; });
  return it != end && it->first <= code ? it->ccc : 0;
}

void decompose(char32_t code, std::vector<char32_t>* out) {
  if (code >= kHangulS && code < kHangulS + kHangulSCount) {
    const char32_t index = code - kHangulS;
    out->push_back(kHangulL + index / kHangulNCount);
    out->push_back(kHangulV + (index % kHangulNCount) / kHangulTCount);
    if (index % kHangulTCount != 0) out->push_back(kHangulT + index % kHangulTCount);
    return;
  }
  const Decomposition* end = kDecompositions + std::size(kDecompositions);
  const Decomposition* it =
      std::lower_bound(kDecompositions, end, code, [](const Decomposition& d, char32_t c) { return d.code < c; });
  if (it == end || it->code != code) {
    out->push_back(code);
    return;
  }
  out->insert(out->end(), kDecompositionData + it->offset, kDecompositionData + it->offset + it->length);
}

// The primary composite of (first, second), or 0.
char32_t compose(char32_t first, char32_t second) {
  if (first >= kHangulL && first < kHangulL + kHangulLCount && second >= kHangulV &&
      second < kHangulV + kHangulVCount) {
    return kHangulS + ((first - kHangulL) * kHangulVCount + (second - kHangulV)) * kHangulTCount;
  }
  if (first >= kHangulS && first < kHangulS + kHangulSCount && (first - kHangulS) % kHangulTCount == 0 &&
      second > kHangulT && second < kHangulT + kHangulTCount) {
    return first + (second - kHangulT);
  }
  if (first >= kRawByteBase || second >= kRawByteBase) return 0;
  const uint64_t key = (static_cast<uint64_t>(first) << 21) | second;
  const Composition* end = kCompositions + std::size(kCompositions);
  const Composition* it =
      std::lower_bound(kCompositions, end, key, [](const Composition& c, uint64_t k) { return c.pair < k; });
  return it != end && it->pair == key ? it->composite : 0;
}

bool is_continuation(unsigned char byte) { return (byte & 0xC0) == 0x80; }

// Bytes of the longest prefix of text[pos..] that could begin a well-formed sequence (1..4), and whether it
// is complete. The allowed second bytes follow the Unicode table of well-formed sequences (Table 3-7).
struct SequenceScan {
  size_t valid_prefix;  // >= 1 (the lead byte itself counts)
  size_t needed;        // total length of the sequence the lead byte announces; 0 for a bad lead byte
};

SequenceScan scan_sequence(std::string_view text, size_t pos) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  size_t needed = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // bounds of the second byte
  if (lead < 0x80) return {1, 1};
  if (lead >= 0xC2 && lead <= 0xDF) {
    needed = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    needed = 3;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    needed = 4;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    return {1, 0};
  }
  size_t valid = 1;
  while (valid < needed && pos + valid < text.size()) {
    const auto byte = static_cast<unsigned char>(text[pos + valid]);
    const bool ok = valid == 1 ? (byte >= lo && byte <= hi) : is_continuation(byte);
    if (!ok) break;
    ++valid;
  }
  return {valid, needed};
}

}  // namespace

DecodedChar decode_utf8_at(std::string_view text, size_t pos) {
  const SequenceScan scan = scan_sequence(text, pos);
  if (scan.needed == 0 || scan.valid_prefix < scan.needed) return {kInvalidByte, 1};
  const auto lead = static_cast<unsigned char>(text[pos]);
  if (scan.needed == 1) return {lead, 1};
  char32_t code = lead & (0x7Fu >> scan.needed);
  for (size_t i = 1; i < scan.needed; ++i) code = (code << 6) | (static_cast<unsigned char>(text[pos + i]) & 0x3Fu);
  return {code, scan.needed};
}

bool is_letter(char32_t code) { return code != kInvalidByte && in_ranges(kLetterRanges, code); }
bool is_number(char32_t code) { return code != kInvalidByte && in_ranges(kNumberRanges, code); }
bool is_white_space(char32_t code) { return code != kInvalidByte && in_ranges(kWhiteSpaceRanges, code); }
const char* unicode_version() { return kUnicodeVersion; }

std::string to_valid_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t pos = 0;
  while (pos < bytes.size()) {
    const SequenceScan scan = scan_sequence(bytes, pos);
    if (scan.needed != 0 && scan.valid_prefix == scan.needed) {
      out.append(bytes.substr(pos, scan.needed));
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD for the maximal subpart
    }
    pos += scan.valid_prefix;
  }
  return out;
}

std::string to_nfc(std::string_view text) {
  if (std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; })) {
    return std::string(text);
  }
  // 1. Full canonical decomposition.
  std::vector<char32_t> codes;
  codes.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const DecodedChar c = decode_utf8_at(text, pos);
    if (c.code == kInvalidByte) {
      codes.push_back(kRawByteBase + static_cast<unsigned char>(text[pos]));
    } else {
      decompose(c.code, &codes);
    }
    pos += c.length;
  }
  // 2. Canonical ordering: each run of non-starters sorted stably by combining class.
  std::vector<uint8_t> classes(codes.size());
  for (size_t i = 0; i < codes.size(); ++i) classes[i] = codes[i] >= kRawByteBase ? 0 : combining_class(codes[i]);
  for (size_t i = 0; i < codes.size();) {
    if (classes[i] == 0) {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < codes.size() && classes[end] != 0) ++end;
    std::vector<std::pair<uint8_t, char32_t>> run;
    for (size_t k = i; k < end; ++k) run.emplace_back(classes[k], codes[k]);
    std::stable_sort(run.begin(), run.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (size_t k = i; k < end; ++k) classes[k] = run[k - i].first, codes[k] = run[k - i].second;
    i = end;
  }
  // 3. Canonical composition (UAX #15): a character may join the last starter when it is next to it, or when
  //    every character kept between them has a lower combining class (otherwise it is blocked).
  std::string out;
  out.reserve(text.size());
  size_t kept = 0;  // codes[0, kept) is the composed prefix
  size_t starter = 0;
  bool have_starter = false;
  int last_class = 0;  // class of the last character kept after the starter (meaningful when not adjacent)
  for (size_t i = 0; i < codes.size(); ++i) {
    const int cls = classes[i];
    const bool adjacent = have_starter && kept == starter + 1;
    if (have_starter && (adjacent || last_class < cls)) {
      const char32_t composite = compose(codes[starter], codes[i]);
      if (composite != 0) {
        codes[starter] = composite;
        continue;
      }
    }
    if (cls == 0) {
      starter = kept;
      have_starter = true;
    }
    last_class = cls;
    codes[kept++] = codes[i];
  }
  for (size_t i = 0; i < kept; ++i) {
    if (codes[i] >= kRawByteBase) {
      out.push_back(static_cast<char>(codes[i] - kRawByteBase));
    } else {
      append_utf8(codes[i], &out);
    }
  }
  return out;
}

void append_utf8(char32_t code, std::string* out) {
  if (code < 0x80) {
    out->push_back(static_cast<char>(code));
  } else if (code < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (code >> 6)));
    out->push_back(static_cast<char>(0x80 | (code & 0x3F)));
  } else if (code < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (code >> 12)));
    out->push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (code & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (code >> 18)));
    out->push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (code & 0x3F)));
  }
}

}  // namespace gsa::unicode
