// Byte-level tokenizer: ids 0..255 are bytes, then the special tokens. It reports word starts, which the
// gist layout uses for its optional word-aware shift (method section 3.1).
//
// Contract: encode() never emits special ids; decode() renders bytes as-is and special tokens as "<pad>",
// "<bos>", "<eos>", "<gist0>".."<gist3>". A token starts a word when its byte is ASCII whitespace or one of
// the reference's boundary characters .,;:!?-()[]{}"' (the "next token begins a word" rule of
// insert_gist_tokens_word_aware); ids that are not bytes (specials) also count as word starts.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gsa {

class ByteTokenizer {
 public:
  static constexpr int64_t kPad = 256;
  static constexpr int64_t kBos = 257;
  static constexpr int64_t kEos = 258;
  static constexpr int64_t kFirstGist = 259;   // gist of level l has id kFirstGist + l
  static constexpr int64_t kMaxGistLevels = 4;
  static constexpr int64_t kVocabSize = kFirstGist + kMaxGistLevels;  // 263

  std::vector<int64_t> encode(std::string_view text) const;
  std::string decode(const std::vector<int64_t>& ids) const;
  // [ids.size()] 1 where ids[i] begins a word, else 0.
  std::vector<uint8_t> word_starts(const std::vector<int64_t>& ids) const;

  static int64_t gist_id(int64_t level);            // throws gsa::Error for level outside 0..3
  static bool is_gist(int64_t id) { return id >= kFirstGist && id < kVocabSize; }
  static int64_t vocab_size() { return kVocabSize; }
};

}  // namespace gsa
