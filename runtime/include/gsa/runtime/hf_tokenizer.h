// HfTokenizer: a Hugging Face tokenizer.json tokenizer of the byte-level BPE kind that Llama-3 and Qwen2 ship,
// giving the same ids as the `tokenizers` library, with the gist tokens of the method (section 2) added.
//
// Contract:
// - Supported files: model BPE (vocab; merges as "a b" strings or ["a", "b"] pairs; ignore_merges; unk_token,
//   fuse_unk; no dropout, byte_fallback, continuing_subword_prefix or end_of_word_suffix), added_tokens (special
//   and normalized flags; no lstrip, rstrip or single_word), normalizer null or NFC, pre_tokenizer a Sequence of
//   Split (the Llama-3 or the Qwen2 regex, behavior Isolated, not inverted) and ByteLevel (use_regex false, no
//   prefix space), decoder ByteLevel. post_processor, truncation and padding are ignored: encode() adds no
//   BOS/EOS, truncates nothing, pads nothing. Anything else throws gsa::Error naming the file and the field;
//   so do a missing or unreadable file, text that is not JSON, and a missing model or vocab.
// - encode(text) == tokenizers' encode(text, add_special_tokens=False).ids for every valid UTF-8 text: added
//   tokens are cut out first (leftmost-longest exact match; non-normalized ones on the raw text, then normalized
//   ones on the normalized rest), then the normalizer, the pre-tokenizer regex, the byte-level mapping and BPE
//   merges by rank. Text that is not valid UTF-8 (which tokenizers cannot receive): each invalid byte is one
//   character of no Unicode class for the regex (like punctuation) and goes through the byte-level mapping like
//   any byte, so nothing is lost; the NFC normalizer leaves invalid bytes where they are.
// - decode(ids) == tokenizers' decode(ids, skip_special_tokens=False): each token's byte-level text maps back to
//   bytes (a token with a character outside the byte-level alphabet, such as "<｜end▁of▁sentence｜>",
//   contributes its own UTF-8; a normalized added token contributes its normalized form, as in tokenizers), and
//   the bytes are read as UTF-8 with each maximal invalid subsequence replaced by U+FFFD. So decode(encode(text))
//   is the text itself when it is valid UTF-8 that the normalizer leaves as it is, and has U+FFFD in place of
//   invalid bytes.
//   An id that no token has throws gsa::Error (tokenizers would skip it).
// - Gist tokens: "<gist>", "<Gist>", "<MGist>" (levels 0..2, the reference's names and order) and "<gist3>"
//   when options.gist_levels is 4. Those already in added_tokens (or the vocab) keep their ids; the others become
//   special added tokens at the first free ids after every vocab and added id, in level order (Llama-3: 128256..,
//   Qwen2: 151646..). max_gist_levels() is max(3, gist_levels); vocab_size() is the largest id + 1.
// - bos_id()/eos_id(): "bos_token"/"eos_token" of a tokenizer_config.json next to the file when it has them,
//   else the first present of <|begin_of_text|>, <s> (BOS) and <|end_of_text|>, <|endoftext|>, </s> (EOS).
// - word_starts: a token starts a word when its decoded text begins with whitespace (Python's str.isspace, as
//   the Python reference would test it: Unicode White_Space plus U+001C..U+001F) or one of .,;:!?-—()[]{}"'
//   (a token that holds only part of a UTF-8 character does not); special tokens always do.
// - Thread-safe: the BPE cache inside is guarded by a mutex. Copies share the loaded tables.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gsa/runtime/tokenizer.h"

namespace gsa {

struct HfTokenizerOptions {
  int64_t gist_levels = 3;  // 1..4; the three reference gist tokens are always there, 4 adds <gist3>
};

class HfTokenizer : public Tokenizer {
 public:
  // Loads path (a tokenizer.json file).
  explicit HfTokenizer(const std::string& path, const HfTokenizerOptions& options = {});
  // Loads tokenizer.json text; `source` names it in error messages; config_json is the text of a
  // tokenizer_config.json, or empty.
  static HfTokenizer from_json(std::string_view json, const std::string& source, std::string_view config_json = {},
                               const HfTokenizerOptions& options = {});

  std::vector<int64_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  std::vector<uint8_t> word_starts(const std::vector<int64_t>& ids) const override;
  std::optional<int64_t> bos_id() const override;
  std::optional<int64_t> eos_id() const override;
  int64_t max_gist_levels() const override;

  // The id of a vocabulary or added token given as its tokenizer.json text, if there is one.
  std::optional<int64_t> token_to_id(std::string_view token) const;
  // "Llama-3" or "Qwen2": which pre-tokenizer regex the file uses.
  const char* pretokenizer_name() const;

  // Whether the level-l gist token was in the file (added_tokens or vocab) rather than added here.
  bool gist_in_file(int64_t level) const;

  static constexpr int64_t kMaxGistTokens = 4;
  // The text of the level-l gist token ("<gist>", "<Gist>", "<MGist>", "<gist3>"), l < kMaxGistTokens.
  static std::string gist_token_name(int64_t level);

  struct Tables;  // hf_tokenizer.cpp

 private:
  explicit HfTokenizer(std::shared_ptr<Tables> tables);
  int64_t vocab_size_impl() const override;
  int64_t gist_id_impl(int64_t level) const override;
  bool is_gist_impl(int64_t id) const override;

  std::shared_ptr<Tables> tables_;
};

}  // namespace gsa
