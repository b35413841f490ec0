// HfTokenizer: encode (added tokens, normalizer, pre-tokenizer, byte-level BPE) and decode, as tokenizers does.
// Loading is in hf_tokenizer_load.cpp.
#include "gsa/runtime/hf_tokenizer.h"

#include <algorithm>
#include <queue>

#include "gsa/runtime/error.h"
#include "gsa/runtime/file_util.h"
#include "hf_tokenizer_tables.h"
#include "gsa/runtime/unicode_text.h"

namespace gsa {
namespace {

// tokenizers caches the BPE result of words shorter than 256 bytes, up to 10000 of them.
constexpr size_t kCacheMaxWordBytes = 256;
constexpr size_t kCacheCapacity = 10000;

// A queued merge of the symbols at pos and its right neighbour. tokenizers pops the lowest rank first and, among
// equal ranks, the leftmost position.
struct Merge {
  int32_t rank;
  size_t pos;
  int32_t new_id;
};
struct MergeAfter {
  bool operator()(const Merge& a, const Merge& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  }
};

struct Symbol {
  int32_t id;
  int64_t prev, next;  // -1 at the ends
  bool alive;
};

// The ids BPE gives one pre-tokenized word (raw bytes): tokenizers' BPE::merge_word and Word::merge_all.
std::vector<int32_t> merge_word(const HfTokenizer::Tables& t, std::string_view word) {
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  auto push = [&symbols](int32_t id) { symbols.push_back({id, static_cast<int64_t>(symbols.size()) - 1, -1, true}); };
  bool pending_unk = false;  // an unknown byte waits to be emitted as unk (fused with later ones if fuse_unk)
  for (const char c : word) {
    const int32_t id = t.byte_ids[static_cast<unsigned char>(c)];
    if (id >= 0) {
      if (pending_unk) push(t.unk_id);
      pending_unk = false;
      push(id);
    } else if (t.unk_id >= 0) {
      if (pending_unk && !t.fuse_unk) push(t.unk_id);
      pending_unk = true;
    }  // no unk token: the byte is dropped
  }
  if (pending_unk) push(t.unk_id);
  for (size_t i = 0; i + 1 < symbols.size(); ++i) symbols[i].next = static_cast<int64_t>(i + 1);

  auto find_merge = [&t](int32_t left, int32_t right) -> const std::pair<int32_t, int32_t>* {
    const auto it = t.merges.find((static_cast<uint64_t>(left) << 32) | static_cast<uint32_t>(right));
    return it == t.merges.end() ? nullptr : &it->second;
  };
  std::priority_queue<Merge, std::vector<Merge>, MergeAfter> queue;
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const auto* m = find_merge(symbols[i].id, symbols[i + 1].id)) queue.push({m->first, i, m->second});
  }
  while (!queue.empty()) {
    const Merge top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    const Symbol right = symbols[static_cast<size_t>(left.next)];
    const auto* current = find_merge(left.id, right.id);
    if (current == nullptr || current->second != top.new_id) continue;  // an expired entry
    // Merge right into left.
    symbols[static_cast<size_t>(left.next)].alive = false;
    left.id = top.new_id;
    left.next = right.next;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = static_cast<int64_t>(top.pos);
    // The pairs the new symbol forms with its neighbours.
    if (left.prev >= 0) {
      if (const auto* m = find_merge(symbols[static_cast<size_t>(left.prev)].id, left.id)) {
        queue.push({m->first, static_cast<size_t>(left.prev), m->second});
      }
    }
    if (left.next >= 0) {
      if (const auto* m = find_merge(left.id, symbols[static_cast<size_t>(left.next)].id)) {
        queue.push({m->first, top.pos, m->second});
      }
    }
  }
  std::vector<int32_t> ids;
  for (int64_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[static_cast<size_t>(i)].next) {
    ids.push_back(symbols[static_cast<size_t>(i)].id);
  }
  return ids;
}

// Appends the ids of one pre-tokenized word: the whole word when ignore_merges and it is in the vocab, else
// BPE through the cache.
void encode_word(HfTokenizer::Tables& t, std::string_view word, std::vector<int64_t>* out) {
  const std::string key(word);
  if (t.ignore_merges) {
    const auto it = t.byte_vocab.find(key);
    if (it != t.byte_vocab.end()) {
      out->push_back(it->second);
      return;
    }
  }
  {
    std::lock_guard<std::mutex> lock(t.cache_mutex);
    const auto it = t.cache.find(key);
    if (it != t.cache.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids = merge_word(t, word);
  out->insert(out->end(), ids.begin(), ids.end());
  if (word.size() < kCacheMaxWordBytes) {
    std::lock_guard<std::mutex> lock(t.cache_mutex);
    if (t.cache.size() < kCacheCapacity) t.cache.emplace(key, std::move(ids));
  }
}

}  // namespace

void AddedTokenMatcher::add(std::string pattern, int64_t id) {
  if (pattern.empty()) return;
  auto& bucket = by_first_byte_[static_cast<unsigned char>(pattern[0])];
  bucket.emplace_back(std::move(pattern), id);
  std::stable_sort(bucket.begin(), bucket.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  ++count_;
}

std::pair<size_t, int64_t> AddedTokenMatcher::longest_at(std::string_view text, size_t pos) const {
  for (const auto& [pattern, id] : by_first_byte_[static_cast<unsigned char>(text[pos])]) {
    if (text.compare(pos, pattern.size(), pattern) == 0) return {pattern.size(), id};
  }
  return {0, -1};
}

HfTokenizer::HfTokenizer(std::shared_ptr<Tables> tables) : tables_(std::move(tables)) {}

HfTokenizer::HfTokenizer(const std::string& path, const HfTokenizerOptions& options) {
  const std::string json = read_file(path);
  const size_t slash = path.rfind('/');
  const std::string config_path =
      (slash == std::string::npos ? std::string() : path.substr(0, slash + 1)) + "tokenizer_config.json";
  const std::string config = path_exists(config_path) ? read_file(config_path) : std::string();
  tables_ = load_hf_tables(json, path, config, options);
}

HfTokenizer HfTokenizer::from_json(std::string_view json, const std::string& source, std::string_view config_json,
                                   const HfTokenizerOptions& options) {
  return HfTokenizer(load_hf_tables(json, source, config_json, options));
}

std::vector<int64_t> HfTokenizer::encode(std::string_view text) const {
  Tables& t = *tables_;
  std::vector<int64_t> ids;
  std::string normalized;
  t.raw_added.split(text, [&](std::string_view piece, int64_t added_id) {
    if (added_id >= 0) {
      ids.push_back(added_id);
      return;
    }
    if (t.nfc) normalized = unicode::to_nfc(piece);
    t.normalized_added.split(t.nfc ? std::string_view(normalized) : piece, [&](std::string_view rest, int64_t id) {
      if (id >= 0) {
        ids.push_back(id);
        return;
      }
      for (std::string_view word : split_pretokens(rest, t.pattern)) encode_word(t, word, &ids);
    });
  });
  return ids;
}

std::string HfTokenizer::decode(const std::vector<int64_t>& ids) const {
  const Tables& t = *tables_;
  std::string bytes;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t id = ids[i];
    GSA_CHECK(id >= 0 && id < static_cast<int64_t>(t.id_known.size()) && t.id_known[id], "HfTokenizer::decode: id ",
              id, " at position ", i, " is not a token of ", t.source);
    bytes += t.id_bytes[id];
  }
  return unicode::to_valid_utf8(bytes);
}

std::vector<uint8_t> HfTokenizer::word_starts(const std::vector<int64_t>& ids) const {
  const Tables& t = *tables_;
  std::vector<uint8_t> starts(ids.size(), 0);
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t id = ids[i];
    GSA_CHECK(id >= 0 && id < static_cast<int64_t>(t.id_known.size()) && t.id_known[id],
              "HfTokenizer::word_starts: id ", id, " at position ", i, " is not a token of ", t.source);
    starts[i] = t.id_word_start[id];
  }
  return starts;
}

std::optional<int64_t> HfTokenizer::bos_id() const { return tables_->bos; }
std::optional<int64_t> HfTokenizer::eos_id() const { return tables_->eos; }
int64_t HfTokenizer::max_gist_levels() const { return static_cast<int64_t>(tables_->gist_ids.size()); }

std::optional<int64_t> HfTokenizer::token_to_id(std::string_view token) const {
  const auto it = tables_->token_ids.find(std::string(token));
  if (it == tables_->token_ids.end()) return std::nullopt;
  return it->second;
}

const char* HfTokenizer::pretokenizer_name() const { return split_pattern_name(tables_->pattern); }

int64_t HfTokenizer::vocab_size_impl() const { return static_cast<int64_t>(tables_->id_known.size()); }

int64_t HfTokenizer::gist_id_impl(int64_t level) const {
  GSA_CHECK(level >= 0 && level < max_gist_levels(), "HfTokenizer::gist_id: level ", level, " is outside 0..",
            max_gist_levels() - 1, " (", tables_->source, ")");
  return tables_->gist_ids[static_cast<size_t>(level)];
}

bool HfTokenizer::is_gist_impl(int64_t id) const {
  return std::find(tables_->gist_ids.begin(), tables_->gist_ids.end(), id) != tables_->gist_ids.end();
}

}  // namespace gsa
