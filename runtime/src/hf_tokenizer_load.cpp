// Loading a tokenizer.json into HfTokenizer::Tables: every field the encoder depends on is checked, and what
// it does not implement is rejected with the file and the field named (see the contract in hf_tokenizer.h).
#include <algorithm>
#include <array>
#include <limits>

#include "gsa/runtime/error.h"
#include "hf_tokenizer_tables.h"
#include "gsa/runtime/json_reader.h"
#include "gsa/runtime/unicode_text.h"

namespace gsa {
namespace {

const char* const kGistNames[HfTokenizer::kMaxGistTokens] = {"<gist>", "<Gist>", "<MGist>", "<gist3>"};
constexpr int64_t kReferenceGistTokens = 3;  // the reference always adds <gist>, <Gist>, <MGist>
constexpr size_t kMaxId = std::numeric_limits<int32_t>::max();

// Field access that reports "<source>: <path>: <problem>".
class Reader {
 public:
  explicit Reader(const std::string& source) : source_(source) {}

  template <typename... Args>
  [[noreturn]] void fail(const std::string& path, const Args&... args) const {
    throw Error(str_cat(source_, ": ", path, ": ", args...));
  }

  const json::Value* optional(const json::Value& object, std::string_view key) const {
    const json::Value* value = object.find(key);
    return value == nullptr || value->kind == json::Value::Kind::kNull ? nullptr : value;
  }
  const json::Value& required(const json::Value& object, std::string_view key, const std::string& path) const {
    const json::Value* value = optional(object, key);
    if (value == nullptr) fail(path, "missing");
    return *value;
  }
  const json::Value& of_kind(const json::Value& value, json::Value::Kind kind, const std::string& path) const {
    if (value.kind != kind) fail(path, "expected ", json::kind_name(kind), ", got ", json::kind_name(value.kind));
    return value;
  }
  const std::string& string_at(const json::Value& object, std::string_view key, const std::string& path) const {
    return of_kind(required(object, key, path), json::Value::Kind::kString, path).string_value;
  }
  // A bool member; absent or null gives fallback.
  bool bool_at(const json::Value& object, std::string_view key, bool fallback, const std::string& path) const {
    const json::Value* value = optional(object, key);
    return value == nullptr ? fallback : of_kind(*value, json::Value::Kind::kBool, path).bool_value;
  }
  int32_t id_of(const json::Value& value, const std::string& path) const {
    of_kind(value, json::Value::Kind::kInteger, path);
    if (value.int_value < 0 || static_cast<uint64_t>(value.int_value) > kMaxId) {
      fail(path, "id ", value.int_value, " is outside [0, ", kMaxId, "]");
    }
    return static_cast<int32_t>(value.int_value);
  }

 private:
  const std::string& source_;
};

// Byte-level string -> raw bytes, or nullopt when a character is outside the byte-level alphabet.
std::optional<std::string> byte_level_to_bytes(std::string_view text) {
  constexpr char32_t kAlphabetEnd = 0x144;  // every byte-level character is below U+0144
  static const std::array<int16_t, kAlphabetEnd> kCharToByte = [] {
    std::array<int16_t, kAlphabetEnd> table;
    table.fill(-1);
    for (int b = 0; b < 256; ++b) table[byte_level_char(static_cast<unsigned char>(b))] = static_cast<int16_t>(b);
    return table;
  }();
  std::string bytes;
  for (size_t pos = 0; pos < text.size();) {
    const unicode::DecodedChar c = unicode::decode_utf8_at(text, pos);
    if (c.code >= kAlphabetEnd || kCharToByte[c.code] < 0) return std::nullopt;
    bytes.push_back(static_cast<char>(kCharToByte[c.code]));
    pos += c.length;
  }
  return bytes;
}

// The method's word-start rule on a token's decoded bytes (section 3.1), with whitespace as the Python reference
// tests it (str.isspace: White_Space plus the separators U+001C..U+001F).
bool starts_word(std::string_view bytes) {
  if (bytes.empty()) return false;
  const char32_t first = unicode::decode_utf8_at(bytes, 0).code;
  if (unicode::is_white_space(first) || (first >= 0x1C && first <= 0x1F)) return true;
  if (first == 0x2014) return true;  // U+2014 EM DASH
  return first < 0x80 && std::string_view(".,;:!?-()[]{}\"'").find(static_cast<char>(first)) != std::string_view::npos;
}

void check_model(const Reader& r, const json::Value& model) {
  r.of_kind(model, json::Value::Kind::kObject, "model");
  if (const json::Value* type = r.optional(model, "type")) {
    const std::string& name = r.of_kind(*type, json::Value::Kind::kString, "model.type").string_value;
    if (name != "BPE") r.fail("model.type", "unsupported model type \"", name, "\" (only BPE)");
  }
  if (r.optional(model, "dropout") != nullptr) r.fail("model.dropout", "BPE dropout is not supported");
  if (r.bool_at(model, "byte_fallback", false, "model.byte_fallback")) {
    r.fail("model.byte_fallback", "byte_fallback is not supported");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const json::Value* value = r.optional(model, key);
    if (value != nullptr && !(value->is_string() && value->string_value.empty())) {
      r.fail(str_cat("model.", key), "not supported");
    }
  }
}

void load_vocab(const Reader& r, const json::Value& model, HfTokenizer::Tables* t) {
  const json::Value& vocab = r.of_kind(r.required(model, "vocab", "model.vocab"), json::Value::Kind::kObject,
                                       "model.vocab");
  t->byte_ids.fill(-1);
  for (const auto& [token, value] : vocab.object_items) {
    const int32_t id = r.id_of(value, str_cat("model.vocab[", json::quote_json(token), "]"));
    t->token_ids[token] = id;
    if (std::optional<std::string> bytes = byte_level_to_bytes(token)) {
      if (bytes->size() == 1) t->byte_ids[static_cast<unsigned char>((*bytes)[0])] = id;
      t->byte_vocab.emplace(std::move(*bytes), id);
    }
  }
}

// merges: ["a b", ...] or [["a", "b"], ...]; rank = index; a later duplicate pair wins, as in tokenizers.
void load_merges(const Reader& r, const json::Value& model, HfTokenizer::Tables* t) {
  const json::Value& merges = r.of_kind(r.required(model, "merges", "model.merges"), json::Value::Kind::kArray,
                                        "model.merges");
  auto id_of_token = [&](const std::string& token, const std::string& path) {
    const auto it = t->token_ids.find(token);
    if (it == t->token_ids.end()) r.fail(path, "token ", json::quote_json(token), " is not in the vocab");
    return static_cast<int32_t>(it->second);
  };
  int32_t rank = 0;
  for (size_t i = 0; i < merges.array_items.size(); ++i) {
    const json::Value& item = merges.array_items[i];
    const std::string path = str_cat("model.merges[", i, "]");
    std::string left, right;
    if (item.is_string()) {
      if (item.string_value.rfind("#version", 0) == 0) continue;
      const size_t space = item.string_value.find(' ');
      if (space == std::string::npos || item.string_value.find(' ', space + 1) != std::string::npos) {
        r.fail(path, "expected \"left right\" (one space), got ", json::quote_json(item.string_value));
      }
      left = item.string_value.substr(0, space);
      right = item.string_value.substr(space + 1);
    } else if (item.is_array() && item.array_items.size() == 2 && item.array_items[0].is_string() &&
               item.array_items[1].is_string()) {
      left = item.array_items[0].string_value;
      right = item.array_items[1].string_value;
    } else {
      r.fail(path, "expected a \"left right\" string or a [left, right] pair of strings");
    }
    const int32_t left_id = id_of_token(left, path);
    const int32_t right_id = id_of_token(right, path);
    const int32_t new_id = id_of_token(left + right, path);
    t->merges[(static_cast<uint64_t>(left_id) << 32) | static_cast<uint32_t>(right_id)] = {rank++, new_id};
  }
}

struct AddedToken {
  std::string content;
  int64_t id;
  bool special;
  bool normalized;
};

std::vector<AddedToken> load_added_tokens(const Reader& r, const json::Value& root) {
  std::vector<AddedToken> added;
  const json::Value* list = r.optional(root, "added_tokens");
  if (list == nullptr) return added;
  r.of_kind(*list, json::Value::Kind::kArray, "added_tokens");
  for (size_t i = 0; i < list->array_items.size(); ++i) {
    const std::string path = str_cat("added_tokens[", i, "]");
    const json::Value& item = r.of_kind(list->array_items[i], json::Value::Kind::kObject, path);
    AddedToken token;
    token.id = r.id_of(r.required(item, "id", path + ".id"), path + ".id");
    token.content = r.string_at(item, "content", path + ".content");
    token.special = r.bool_at(item, "special", false, path + ".special");
    token.normalized = r.bool_at(item, "normalized", !token.special, path + ".normalized");
    for (const char* flag : {"lstrip", "rstrip", "single_word"}) {
      if (r.bool_at(item, flag, false, str_cat(path, ".", flag))) {
        r.fail(str_cat(path, ".", flag), "true is not supported (token ", json::quote_json(token.content), ")");
      }
    }
    added.push_back(std::move(token));
  }
  return added;
}

void check_normalizer(const Reader& r, const json::Value& root, HfTokenizer::Tables* t) {
  const json::Value* normalizer = r.optional(root, "normalizer");
  if (normalizer == nullptr) return;
  r.of_kind(*normalizer, json::Value::Kind::kObject, "normalizer");
  const std::string& type = r.string_at(*normalizer, "type", "normalizer.type");
  if (type != "NFC") r.fail("normalizer.type", "unsupported normalizer \"", type, "\" (supported: null, NFC)");
  t->nfc = true;
}

// Sequence[Split(Llama-3 or Qwen2 regex, Isolated, invert false), ByteLevel(use_regex false, no prefix space)].
void check_pretokenizer(const Reader& r, const json::Value& root, HfTokenizer::Tables* t) {
  const json::Value& pre = r.of_kind(r.required(root, "pre_tokenizer", "pre_tokenizer"),
                                     json::Value::Kind::kObject, "pre_tokenizer");
  const std::string& type = r.string_at(pre, "type", "pre_tokenizer.type");
  if (type != "Sequence") {
    r.fail("pre_tokenizer.type", "unsupported pre-tokenizer \"", type,
           "\" (supported: a Sequence of Split with the Llama-3 or Qwen2 regex and ByteLevel)");
  }
  const json::Value& steps = r.of_kind(r.required(pre, "pretokenizers", "pre_tokenizer.pretokenizers"),
                                       json::Value::Kind::kArray, "pre_tokenizer.pretokenizers");
  if (steps.array_items.size() != 2) {
    r.fail("pre_tokenizer.pretokenizers", "expected 2 steps (Split, ByteLevel), got ", steps.array_items.size());
  }
  const std::string split_path = "pre_tokenizer.pretokenizers[0]";
  const json::Value& split = r.of_kind(steps.array_items[0], json::Value::Kind::kObject, split_path);
  const std::string& split_type = r.string_at(split, "type", split_path + ".type");
  if (split_type != "Split") r.fail(split_path + ".type", "expected Split, got \"", split_type, "\"");
  const json::Value& pattern = r.of_kind(r.required(split, "pattern", split_path + ".pattern"),
                                         json::Value::Kind::kObject, split_path + ".pattern");
  const std::string& regex = r.string_at(pattern, "Regex", split_path + ".pattern.Regex");
  t->pattern = split_pattern_for_regex(regex, str_cat(t->source, ": ", split_path, ".pattern.Regex"));
  const std::string& behavior = r.string_at(split, "behavior", split_path + ".behavior");
  if (behavior != "Isolated") r.fail(split_path + ".behavior", "expected Isolated, got \"", behavior, "\"");
  if (r.bool_at(split, "invert", false, split_path + ".invert")) r.fail(split_path + ".invert", "must be false");

  const std::string byte_path = "pre_tokenizer.pretokenizers[1]";
  const json::Value& byte_level = r.of_kind(steps.array_items[1], json::Value::Kind::kObject, byte_path);
  const std::string& byte_type = r.string_at(byte_level, "type", byte_path + ".type");
  if (byte_type != "ByteLevel") r.fail(byte_path + ".type", "expected ByteLevel, got \"", byte_type, "\"");
  if (r.bool_at(byte_level, "use_regex", true, byte_path + ".use_regex")) {
    r.fail(byte_path + ".use_regex", "must be false (the GPT-2 regex of ByteLevel is not supported)");
  }
  if (r.bool_at(byte_level, "add_prefix_space", false, byte_path + ".add_prefix_space")) {
    r.fail(byte_path + ".add_prefix_space", "must be false");
  }
}

void check_decoder(const Reader& r, const json::Value& root) {
  const json::Value& decoder = r.of_kind(r.required(root, "decoder", "decoder"), json::Value::Kind::kObject,
                                         "decoder");
  const std::string& type = r.string_at(decoder, "type", "decoder.type");
  if (type != "ByteLevel") r.fail("decoder.type", "unsupported decoder \"", type, "\" (only ByteLevel)");
}

// Registers the added tokens and the gist tokens; fills the id tables.
void build_id_tables(const Reader& r, std::vector<AddedToken> added, const HfTokenizerOptions& options,
                     HfTokenizer::Tables* t) {
  int64_t max_id = -1;
  for (const auto& [token, id] : t->token_ids) max_id = std::max(max_id, id);
  for (const AddedToken& token : added) max_id = std::max(max_id, token.id);

  if (options.gist_levels < 1 || options.gist_levels > 4) {
    r.fail("gist tokens", "gist_levels must be 1..4, got ", options.gist_levels);
  }
  const int64_t gist_count = std::max(kReferenceGistTokens, options.gist_levels);
  for (int64_t level = 0; level < gist_count; ++level) {
    const std::string name = kGistNames[level];
    auto existing = std::find_if(added.begin(), added.end(), [&](const AddedToken& a) { return a.content == name; });
    if (existing != added.end()) {
      t->gist_ids.push_back(existing->id);
      t->gist_in_file.push_back(1);
      continue;
    }
    const auto in_vocab = t->token_ids.find(name);
    const int64_t id = in_vocab != t->token_ids.end() ? in_vocab->second : ++max_id;
    t->gist_in_file.push_back(in_vocab != t->token_ids.end() ? 1 : 0);
    added.push_back({name, id, /*special=*/true, /*normalized=*/false});
    t->gist_ids.push_back(id);
  }

  const size_t size = static_cast<size_t>(max_id + 1);
  t->id_bytes.assign(size, std::string());
  t->id_known.assign(size, 0);
  t->id_word_start.assign(size, 0);
  for (const auto& [token, id] : t->token_ids) {
    std::optional<std::string> bytes = byte_level_to_bytes(token);
    t->id_bytes[id] = bytes ? std::move(*bytes) : token;  // outside the alphabet: its own UTF-8 (ByteLevel decoder)
    t->id_known[id] = 1;
  }
  for (AddedToken& token : added) {  // an added token's text wins over a vocab entry with the same id
    // tokenizers matches a normalized added token by its normalized form and also decodes it from that form.
    const std::string text = token.normalized && t->nfc ? unicode::to_nfc(token.content) : token.content;
    std::optional<std::string> bytes = byte_level_to_bytes(text);
    t->id_bytes[token.id] = bytes ? std::move(*bytes) : text;
    t->id_known[token.id] = 1;
    t->token_ids[token.content] = token.id;
    (token.normalized ? t->normalized_added : t->raw_added).add(text, token.id);
  }
  for (size_t id = 0; id < size; ++id) t->id_word_start[id] = starts_word(t->id_bytes[id]) ? 1 : 0;
  for (const AddedToken& token : added) {
    if (token.special) t->id_word_start[token.id] = 1;
  }
}

// bos/eos: tokenizer_config.json's bos_token/eos_token (a string or {"content": ...}), else well-known names.
std::optional<int64_t> special_id(const Reader& r, const json::Value* config, const char* key,
                                  std::initializer_list<const char*> fallbacks, const HfTokenizer::Tables& t) {
  if (config != nullptr) {
    if (const json::Value* value = r.optional(*config, key)) {
      const std::string path = str_cat("tokenizer_config.json ", key);
      const std::string& name = value->is_object() ? r.string_at(*value, "content", path + ".content")
                                                   : r.of_kind(*value, json::Value::Kind::kString, path).string_value;
      const auto it = t.token_ids.find(name);
      if (it == t.token_ids.end()) r.fail(path, "token ", json::quote_json(name), " is not in the tokenizer");
      return it->second;
    }
  }
  for (const char* name : fallbacks) {
    const auto it = t.token_ids.find(name);
    if (it != t.token_ids.end()) return it->second;
  }
  return std::nullopt;
}

json::Value parse(const Reader& r, std::string_view text, const std::string& what) {
  try {
    return json::parse_json(text);
  } catch (const Error& e) {
    r.fail(what, e.what());
  }
}

}  // namespace

char32_t byte_level_char(unsigned char byte) {
  // Printable Latin-1 stands for itself: '!'..'~', U+00A1..U+00AC, U+00AE..U+00FF. The other 68 bytes take
  // U+0100, U+0101, ... in byte order.
  auto printable = [](unsigned b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; };
  if (printable(byte)) return byte;
  char32_t next = 0x100;
  for (unsigned b = 0; b < byte; ++b) {
    if (!printable(b)) ++next;
  }
  return next;
}

std::shared_ptr<HfTokenizer::Tables> load_hf_tables(std::string_view json_text, const std::string& source,
                                                    std::string_view config_json, const HfTokenizerOptions& options) {
  auto t = std::make_shared<HfTokenizer::Tables>();
  t->source = source;
  const Reader r(source);
  const json::Value root = parse(r, json_text, "not a valid tokenizer.json");
  r.of_kind(root, json::Value::Kind::kObject, "top level");
  const json::Value& model = r.required(root, "model", "model");
  check_model(r, model);
  load_vocab(r, model, t.get());
  load_merges(r, model, t.get());
  t->ignore_merges = r.bool_at(model, "ignore_merges", false, "model.ignore_merges");
  t->fuse_unk = r.bool_at(model, "fuse_unk", false, "model.fuse_unk");
  if (const json::Value* unk = r.optional(model, "unk_token")) {
    const std::string& name = r.of_kind(*unk, json::Value::Kind::kString, "model.unk_token").string_value;
    const auto it = t->token_ids.find(name);
    if (it == t->token_ids.end()) r.fail("model.unk_token", json::quote_json(name), " is not in the vocab");
    t->unk_id = static_cast<int32_t>(it->second);
  }
  check_normalizer(r, root, t.get());
  check_pretokenizer(r, root, t.get());
  check_decoder(r, root);
  build_id_tables(r, load_added_tokens(r, root), options, t.get());

  json::Value config;
  if (!config_json.empty()) config = parse(r, config_json, "tokenizer_config.json");
  const json::Value* config_ptr = config.is_object() ? &config : nullptr;
  t->bos = special_id(r, config_ptr, "bos_token", {"<|begin_of_text|>", "<s>"}, *t);
  t->eos = special_id(r, config_ptr, "eos_token", {"<|end_of_text|>", "<|endoftext|>", "</s>"}, *t);
  return t;
}

bool HfTokenizer::gist_in_file(int64_t level) const {
  GSA_CHECK(level >= 0 && level < max_gist_levels(), "gist level ", level, " is outside 0..", max_gist_levels() - 1);
  return tables_->gist_in_file[static_cast<size_t>(level)] != 0;
}

std::string HfTokenizer::gist_token_name(int64_t level) {
  GSA_CHECK(level >= 0 && level < kMaxGistTokens, "gist level ", level, " is outside 0..", kMaxGistTokens - 1);
  return kGistNames[level];
}

}  // namespace gsa
