#include "gsa/runtime/tokenizer.h"

#include "gsa/runtime/error.h"

namespace gsa {
namespace {

// The boundary rule of the reference's insert_gist_tokens_word_aware: a token begins a word when its byte is
// ASCII whitespace or one of these punctuation characters.
bool is_boundary_byte(unsigned char byte) {
  switch (byte) {
    case ' ': case '\t': case '\n': case '\r': case '\v': case '\f':
    case '.': case ',': case ';': case ':': case '!': case '?': case '-':
    case '(': case ')': case '[': case ']': case '{': case '}': case '"': case '\'':
      return true;
    default:
      return false;
  }
}

}  // namespace

std::vector<int64_t> ByteTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> ids;
  ids.reserve(text.size());
  for (char c : text) ids.push_back(static_cast<int64_t>(static_cast<unsigned char>(c)));
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string text;
  text.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t id = ids[i];
    if (id >= 0 && id < 256) {
      text.push_back(static_cast<char>(static_cast<unsigned char>(id)));
    } else if (id == kPad) {
      text += "<pad>";
    } else if (id == kBos) {
      text += "<bos>";
    } else if (id == kEos) {
      text += "<eos>";
    } else if (is_gist(id)) {
      text += str_cat("<gist", id - kFirstGist, ">");
    } else {
      throw Error(str_cat("ByteTokenizer::decode: id ", id, " at position ", i, " is outside the vocabulary [0, ",
                          kVocabSize, ")"));
    }
  }
  return text;
}

std::vector<uint8_t> ByteTokenizer::word_starts(const std::vector<int64_t>& ids) const {
  std::vector<uint8_t> starts(ids.size(), 0);
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t id = ids[i];
    const bool is_byte = id >= 0 && id < 256;
    starts[i] = (!is_byte || is_boundary_byte(static_cast<unsigned char>(id))) ? 1 : 0;
  }
  return starts;
}

int64_t ByteTokenizer::gist_id(int64_t level) {
  GSA_CHECK(level >= 0 && level < kMaxGistLevels, "ByteTokenizer::gist_id: level ", level, " is outside 0..",
            kMaxGistLevels - 1);
  return kFirstGist + level;
}

}  // namespace gsa
