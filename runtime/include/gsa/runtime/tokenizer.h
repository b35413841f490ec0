// Tokenizers: the Tokenizer interface and the byte-level ByteTokenizer (HfTokenizer, the Hugging Face
// tokenizer.json one, is in hf_tokenizer.h).
//
// Tokenizer contract (every implementation):
// - encode(text) maps bytes to ids; it adds no BOS/EOS (callers add bos_id()/eos_id() where they want them).
// - decode(ids) maps ids back to text; an id outside [0, vocab_size()) throws gsa::Error naming it and its
//   position.
// - word_starts(ids)[i] is 1 when ids[i] begins a word for the gist layout's word-aware shift (method section
//   3.1: the token's text begins with whitespace or one of .,;:!?-—()[]{}"'), else 0; special tokens count as
//   word starts.
// - gist_id(level) is the id of the gist token of that level, for 0 <= level < max_gist_levels(), else it throws
//   gsa::Error naming the level; is_gist(id) is true exactly for those ids. Gist ids are never produced by
//   encode() of text that does not spell them.
// - bos_id() / eos_id() are the ids of the beginning/end-of-text tokens, or nullopt where the tokenizer has none.
// - Implementations are immutable after construction and safe to use from several threads at once.
//
// The public non-virtual vocab_size / gist_id / is_gist forward to private virtuals (NVI) so that ByteTokenizer
// can keep its static functions of the same names (ByteTokenizer::gist_id(0) is used as a constant elsewhere).
//
// ByteTokenizer: ids 0..255 are bytes, then the special tokens. encode() never emits special ids; decode()
// renders bytes as-is and special tokens as "<pad>", "<bos>", "<eos>", "<gist0>".."<gist3>". A token starts a
// word when its byte is ASCII whitespace or one of the reference's boundary characters .,;:!?-()[]{}"' (the "next
// token begins a word" rule of insert_gist_tokens_word_aware); ids that are not bytes (specials) also count as
// word starts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gsa {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  virtual std::vector<int64_t> encode(std::string_view text) const = 0;
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;
  // [ids.size()] 1 where ids[i] begins a word, else 0.
  virtual std::vector<uint8_t> word_starts(const std::vector<int64_t>& ids) const = 0;
  virtual std::optional<int64_t> bos_id() const = 0;
  virtual std::optional<int64_t> eos_id() const = 0;
  virtual int64_t max_gist_levels() const = 0;

  int64_t vocab_size() const { return vocab_size_impl(); }
  int64_t gist_id(int64_t level) const { return gist_id_impl(level); }
  bool is_gist(int64_t id) const { return is_gist_impl(id); }

 private:
  virtual int64_t vocab_size_impl() const = 0;
  virtual int64_t gist_id_impl(int64_t level) const = 0;
  virtual bool is_gist_impl(int64_t id) const = 0;
};

class ByteTokenizer : public Tokenizer {
 public:
  static constexpr int64_t kPad = 256;
  static constexpr int64_t kBos = 257;
  static constexpr int64_t kEos = 258;
  static constexpr int64_t kFirstGist = 259;   // gist of level l has id kFirstGist + l
  static constexpr int64_t kMaxGistLevels = 4;
  static constexpr int64_t kVocabSize = kFirstGist + kMaxGistLevels;  // 263

  std::vector<int64_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  std::vector<uint8_t> word_starts(const std::vector<int64_t>& ids) const override;
  std::optional<int64_t> bos_id() const override { return kBos; }
  std::optional<int64_t> eos_id() const override { return kEos; }
  int64_t max_gist_levels() const override { return kMaxGistLevels; }

  static int64_t gist_id(int64_t level);            // throws gsa::Error for level outside 0..3
  static bool is_gist(int64_t id) { return id >= kFirstGist && id < kVocabSize; }
  static int64_t vocab_size() { return kVocabSize; }

 private:
  int64_t vocab_size_impl() const override { return kVocabSize; }
  int64_t gist_id_impl(int64_t level) const override { return gist_id(level); }
  bool is_gist_impl(int64_t id) const override { return is_gist(id); }
};

}  // namespace gsa
