// The loaded form of a tokenizer.json (HfTokenizer::Tables), private to the runtime: hf_tokenizer_load.cpp
// fills it from the file, hf_tokenizer.cpp encodes and decodes with it.
//
// Contract: after load_hf_tables returns, everything but the BPE cache is immutable; the cache is only
// touched under cache_mutex. Ids are int64 everywhere outside the BPE inner loop, which uses int32 (tokenizers'
// ids are u32; load rejects ids outside [0, 2^31)).
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gsa/runtime/hf_tokenizer.h"
#include "pretokenizer.h"

namespace gsa {

// Leftmost-longest exact matching of a set of strings (the added tokens), as tokenizers' Aho-Corasick
// (MatchKind::LeftmostLongest) finds them.
class AddedTokenMatcher {
 public:
  void add(std::string pattern, int64_t id);  // empty patterns are ignored

  // Cuts text into consecutive pieces and calls emit(piece, id) for each: id is the matched token's id, or -1
  // for the text between matches (never empty). Empty text gives one call with an empty piece and -1.
  template <typename Emit>
  void split(std::string_view text, Emit&& emit) const {
    size_t start = 0;  // first byte not yet emitted
    for (size_t pos = 0; pos < text.size() && count_ > 0;) {
      const auto [length, id] = longest_at(text, pos);
      if (length == 0) {
        ++pos;
        continue;
      }
      if (start < pos) emit(text.substr(start, pos - start), int64_t{-1});
      emit(text.substr(pos, length), id);
      pos += length;
      start = pos;
    }
    if (start < text.size() || text.empty()) emit(text.substr(start), int64_t{-1});
  }

 private:
  // (length, id) of the longest pattern that starts at text[pos], or (0, -1).
  std::pair<size_t, int64_t> longest_at(std::string_view text, size_t pos) const;

  // Patterns by their first byte, longest first.
  std::array<std::vector<std::pair<std::string, int64_t>>, 256> by_first_byte_;
  size_t count_ = 0;
};

struct HfTokenizer::Tables {
  std::string source;  // the file, for messages
  SplitPattern pattern = SplitPattern::kLlama3;
  bool nfc = false;

  // BPE over raw bytes: the byte-level alphabet is a bijection with bytes, so the vocabulary is kept with its
  // keys mapped back to bytes and the byte-level strings never need to be built while encoding.
  std::array<int32_t, 256> byte_ids{};                 // id of the one-byte token, -1 if the vocab lacks it
  std::unordered_map<std::string, int32_t> byte_vocab;  // raw bytes -> id, for keys inside the alphabet
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges;  // (left << 32 | right) -> (rank, new id)
  bool ignore_merges = false;
  int32_t unk_id = -1;  // -1: no unk token (unknown bytes are dropped, as tokenizers does)
  bool fuse_unk = false;

  AddedTokenMatcher raw_added;         // added tokens with normalized = false, matched before normalization
  AddedTokenMatcher normalized_added;  // normalized = true, matched on the normalized text

  std::unordered_map<std::string, int64_t> token_ids;  // tokenizer.json text (vocab key or added content) -> id
  std::vector<std::string> id_bytes;   // [vocab size] what each id contributes to decode's byte stream
  std::vector<uint8_t> id_known;       // [vocab size] 1 where some token has the id
  std::vector<uint8_t> id_word_start;  // [vocab size]
  std::vector<int64_t> gist_ids;       // by level
  std::vector<uint8_t> gist_in_file;  // by level: 1 = tokenizer.json has the token, 0 = HfTokenizer added it
  std::optional<int64_t> bos, eos;

  std::mutex cache_mutex;
  std::unordered_map<std::string, std::vector<int32_t>> cache;  // raw-byte word -> ids; guarded by cache_mutex
};

// Parses tokenizer.json text (and an optional tokenizer_config.json text) into tables; errors name `source`.
std::shared_ptr<HfTokenizer::Tables> load_hf_tables(std::string_view json, const std::string& source,
                                                    std::string_view config_json, const HfTokenizerOptions& options);

// GPT-2's bytes_to_unicode: the character that stands for each byte in byte-level token strings.
char32_t byte_level_char(unsigned char byte);

}  // namespace gsa
