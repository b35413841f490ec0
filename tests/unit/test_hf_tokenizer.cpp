// HfTokenizer against Hugging Face `tokenizers` (tests/oracle/hf_tokenizer_oracle.py trains a Llama-3-shaped and
// a Qwen2-shaped tokenizer and records pre-tokenizer pieces, encodes, decodes and word starts for thousands of
// strings, and tokenizers' NFC of ~6000 texts): exact equality everywhere. Plus gist-token ids, BOS/EOS, invalid
// UTF-8, thread safety, and the errors of bad files.
#include <gtest/gtest.h>

#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../../runtime/src/pretokenizer.h"   // private helper of gsa_runtime, tested directly below
#include "gsa/runtime/unicode_text.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/file_util.h"
#include "gsa/runtime/hf_tokenizer.h"

namespace gsa {
namespace {

const std::string kOracleDir = std::string(GSA_BINARY_DIR) + "/oracle/hf_tokenizer";

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

std::string to_hex(const std::string& bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back("0123456789abcdef"[c >> 4]);
    out.push_back("0123456789abcdef"[c & 15]);
  }
  return out;
}

std::vector<int64_t> parse_ids(const std::string& field) {
  std::vector<int64_t> ids;
  std::istringstream in(field);
  for (int64_t id; in >> id;) ids.push_back(id);
  return ids;
}

std::string ids_text(const std::vector<int64_t>& ids) {
  std::string out;
  for (int64_t id : ids) out += (out.empty() ? "" : " ") + std::to_string(id);
  return out;
}

// One line of cases.tsv: kind, first field, second field (see the oracle script).
struct OracleLine {
  std::string kind, a, b;
};

struct OracleCase {
  std::string name;
  std::string dir;
  std::vector<OracleLine> lines;
  int64_t info(const std::string& key) const {
    for (const OracleLine& line : lines) {
      if (line.kind == "I" && line.a == key) return std::stoll(line.b);
    }
    throw Error("cases.tsv lacks I " + key);
  }
};

class HfTokenizerOracle : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    oracle_.name = GetParam();
    oracle_.dir = kOracleDir + "/" + oracle_.name;
    if (!path_exists(oracle_.dir + "/cases.tsv")) GTEST_SKIP() << "oracle files absent (python lacks tokenizers?)";
    std::istringstream in(read_file(oracle_.dir + "/cases.tsv"));
    for (std::string text; std::getline(in, text);) {
      OracleLine line;
      const size_t t1 = text.find('\t'), t2 = text.find('\t', t1 + 1);
      ASSERT_NE(t2, std::string::npos) << text;
      line.kind = text.substr(0, t1);
      line.a = text.substr(t1 + 1, t2 - t1 - 1);
      line.b = text.substr(t2 + 1);
      oracle_.lines.push_back(std::move(line));
    }
    tokenizer_ = std::make_unique<HfTokenizer>(oracle_.dir + "/tokenizer.json");
  }

  // Compares compute(line) with each line's expected field, for every line of this kind. Reports the first
  // kMaxReported differences and returns how many lines were checked.
  template <typename Compute>
  size_t check_lines(const std::string& kind, Compute compute) const {
    constexpr int kMaxReported = 10;
    size_t checked = 0;
    int failures = 0;
    for (const OracleLine& line : oracle_.lines) {
      if (line.kind != kind) continue;
      ++checked;
      const std::string got = compute(line);
      if (got != line.b && ++failures <= kMaxReported) {
        ADD_FAILURE() << kind << " line, input " << line.a << "\n  expected " << line.b << "\n  got      " << got;
      }
    }
    EXPECT_EQ(failures, 0) << "lines of kind " << kind << " that differ";
    return checked;
  }

  OracleCase oracle_;
  std::unique_ptr<HfTokenizer> tokenizer_;
};

TEST_P(HfTokenizerOracle, PretokenizerPiecesMatch) {
  const SplitPattern pattern = oracle_.name == "llama3" ? SplitPattern::kLlama3 : SplitPattern::kQwen2;
  EXPECT_STREQ(tokenizer_->pretokenizer_name(), split_pattern_name(pattern));
  const size_t checked = check_lines("P", [&](const OracleLine& line) {
    const std::string text = from_hex(line.a);  // the pieces point into it
    std::string got;
    for (std::string_view piece : split_pretokens(text, pattern)) {
      got += (got.empty() ? "" : " ") + to_hex(std::string(piece));
    }
    return got;
  });
  EXPECT_GT(checked, 3000u);
}

TEST_P(HfTokenizerOracle, EncodeMatchesEveryString) {
  const size_t checked = check_lines("E", [&](const OracleLine& line) {
    return ids_text(tokenizer_->encode(from_hex(line.a)));
  });
  EXPECT_GT(checked, 3000u);
}

TEST_P(HfTokenizerOracle, EncodeIsThreadSafe) {
  std::vector<std::string> texts;
  std::vector<std::vector<int64_t>> expected;
  for (const OracleLine& line : oracle_.lines) {
    if (line.kind != "E") continue;
    texts.push_back(from_hex(line.a));
    expected.push_back(parse_ids(line.b));
  }
  // A fresh tokenizer, so the threads fill its BPE cache at the same time.
  const HfTokenizer fresh(oracle_.dir + "/tokenizer.json");
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (size_t w = 0; w < mismatches.size(); ++w) {
    threads.emplace_back([&, w] {
      for (size_t i = w; i < w + texts.size(); ++i) {  // each thread starts elsewhere
        const size_t k = i % texts.size();
        mismatches[w] += fresh.encode(texts[k]) != expected[k];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

TEST_P(HfTokenizerOracle, DecodeMatchesEveryIdList) {
  const size_t checked = check_lines("D", [&](const OracleLine& line) {
    return to_hex(tokenizer_->decode(parse_ids(line.a)));
  });
  EXPECT_GT(checked, 2000u);
}

TEST_P(HfTokenizerOracle, WordStartsMatchThePythonRule) {
  const size_t checked = check_lines("W", [&](const OracleLine& line) {
    return std::to_string(tokenizer_->word_starts({std::stoll(line.a)})[0]);
  });
  EXPECT_GE(checked, 2000u);
  for (int64_t level = 0; level < tokenizer_->max_gist_levels(); ++level) {
    EXPECT_EQ(tokenizer_->word_starts({tokenizer_->gist_id(level)})[0], 1);  // special tokens start words
  }
}

TEST_P(HfTokenizerOracle, NfcMatchesTheNormalizerOfTokenizers) {
  const size_t checked = check_lines("N", [&](const OracleLine& line) {
    return to_hex(unicode::to_nfc(from_hex(line.a)));
  });
  if (oracle_.name == "qwen2") {
    EXPECT_GT(checked, 5000u);  // the case with the NFC normalizer
  }
}

TEST_P(HfTokenizerOracle, GistTokensFollowTheVocabularyOrReuseTheFilesIds) {
  const int64_t first_free = oracle_.info("first_free_id");
  const int64_t gist0_in_file = oracle_.info("gist0");
  ASSERT_EQ(tokenizer_->max_gist_levels(), 3);
  int64_t next = first_free;
  for (int64_t level = 0; level < 3; ++level) {
    const int64_t expected = level == 0 && gist0_in_file >= 0 ? gist0_in_file : next++;
    EXPECT_EQ(tokenizer_->gist_id(level), expected) << "level " << level;
    EXPECT_TRUE(tokenizer_->is_gist(expected));
  }
  EXPECT_EQ(tokenizer_->vocab_size(), next);
  EXPECT_FALSE(tokenizer_->is_gist(0));
  EXPECT_FALSE(tokenizer_->is_gist(next));
  EXPECT_THROW(tokenizer_->gist_id(3), Error);
  EXPECT_THROW(tokenizer_->gist_id(-1), Error);
  EXPECT_EQ(*tokenizer_->token_to_id("<Gist>"), tokenizer_->gist_id(1));
  EXPECT_EQ(*tokenizer_->token_to_id("<MGist>"), tokenizer_->gist_id(2));

  // Gist names in text are special tokens; they decode to their names.
  const std::vector<int64_t> ids = tokenizer_->encode("ab<gist>cd<Gist><MGist>");
  std::vector<int64_t> gists;
  for (int64_t id : ids) {
    if (tokenizer_->is_gist(id)) gists.push_back(id);
  }
  EXPECT_EQ(gists, (std::vector<int64_t>{tokenizer_->gist_id(0), tokenizer_->gist_id(1), tokenizer_->gist_id(2)}));
  EXPECT_EQ(tokenizer_->decode(ids), "ab<gist>cd<Gist><MGist>");

  HfTokenizerOptions four;
  four.gist_levels = 4;
  const HfTokenizer tok4(oracle_.dir + "/tokenizer.json", four);
  EXPECT_EQ(tok4.max_gist_levels(), 4);
  EXPECT_EQ(tok4.gist_id(3), next);
  EXPECT_EQ(tok4.vocab_size(), next + 1);
  EXPECT_EQ(tok4.decode({tok4.gist_id(3)}), "<gist3>");
}

TEST_P(HfTokenizerOracle, BosAndEos) {
  const int64_t bos = oracle_.info("bos"), eos = oracle_.info("eos");
  EXPECT_EQ(tokenizer_->bos_id().value_or(-1), bos);
  EXPECT_EQ(tokenizer_->eos_id().value_or(-1), eos);
  EXPECT_TRUE(oracle_.name == "qwen2" ? bos == -1 : bos >= 0);  // qwen2: tokenizer_config.json says no BOS
}

TEST_P(HfTokenizerOracle, InvalidUtf8KeepsEveryByteAndDecodesWithReplacement) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> byte(0, 255), length(1, 40);
  const std::string valid[] = {"hello ", "\xd0\xbf\xd1\x80\xd0\xb8", " 123", "\xe4\xbd\xa0\xe5\xa5\xbd", "'s "};
  for (int trial = 0; trial < 300; ++trial) {
    std::string text;
    const int n = length(rng);
    for (int i = 0; i < n; ++i) {
      if (i % 4 == 0) text += valid[static_cast<size_t>(byte(rng)) % 5];
      text.push_back(static_cast<char>(byte(rng)));
    }
    const std::vector<int64_t> ids = tokenizer_->encode(text);
    for (int64_t id : ids) ASSERT_TRUE(id >= 0 && id < tokenizer_->vocab_size());
    // Byte-level BPE loses nothing: decoding gives the text read as UTF-8 with U+FFFD for invalid bytes (NFC
    // may change the valid parts of the qwen2 case, so the exact check is on llama3).
    if (oracle_.name == "llama3") {
      EXPECT_EQ(tokenizer_->decode(ids), unicode::to_valid_utf8(text)) << to_hex(text);
    }
  }
  // A lone invalid byte is one character of its own: its one-byte token.
  const std::vector<int64_t> ids = tokenizer_->encode("a\xff" "b");
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(tokenizer_->decode({ids[1]}), "\xef\xbf\xbd");
}

TEST_P(HfTokenizerOracle, DecodeRejectsUnknownIds) {
  EXPECT_THROW(tokenizer_->decode({tokenizer_->vocab_size()}), Error);
  EXPECT_THROW(tokenizer_->decode({-1}), Error);
  try {
    tokenizer_->decode({1, 5, 999999});
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("999999 at position 2"), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Oracle, HfTokenizerOracle, ::testing::Values("llama3", "qwen2"));

// json with its first `from` replaced by `to` (which must be there).
std::string with(std::string json, const std::string& from, const std::string& to) {
  const size_t pos = json.find(from);
  if (pos == std::string::npos) throw Error("test bug: '" + from + "' is not in the JSON");
  return json.replace(pos, from.size(), to);
}

// A tokenizer.json small enough to write inline: bytes 'a' 'b' 'c' and two merges.
std::string mini_json(const std::string& merges = R"(["a b", "ab c"])", const std::string& model_extra = "") {
  const std::string regex =  // Qwen2's, JSON-escaped
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+)";
  return R"({"version": "1.0", "added_tokens": [{"id": 7, "content": "<s>", "special": true, "normalized": false}],
    "normalizer": null,
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": ")" + regex + R"("}, "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]},
    "post_processor": null, "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE",)" + model_extra + R"( "vocab": {"a": 0, "b": 1,
      "c": 2, "ab": 3, "abc": 4, "\u0120": 5}, "merges": )" + merges + "}}";
}

TEST(HfTokenizer, MiniFileBothMergeFormsAndDroppedUnknownBytes) {
  for (const char* merges :
       {R"(["a b", "ab c"])", R"([["a", "b"], ["ab", "c"]])", R"(["#version: 0.2", "a b", "ab c"])"}) {
    const HfTokenizer tok = HfTokenizer::from_json(mini_json(merges), "mini.json");
    EXPECT_EQ(tok.encode("abc"), (std::vector<int64_t>{4})) << merges;
    EXPECT_EQ(tok.encode("ab abcx"), (std::vector<int64_t>{3, 5, 4})) << merges;  // 'x' has no token: dropped
    EXPECT_EQ(tok.encode("a<s>b"), (std::vector<int64_t>{0, 7, 1})) << merges;
    EXPECT_EQ(tok.decode({4, 5, 7}), "abc <s>");
    EXPECT_EQ(tok.bos_id().value_or(-1), 7);
    EXPECT_FALSE(tok.eos_id().has_value());
    EXPECT_EQ(tok.gist_id(0), 8);  // after the largest id, the added <s> (7)
    EXPECT_EQ(tok.vocab_size(), 11);
  }
  // Rank order: with "b c" ranked first, "abc" is a + bc, and bc is not merged further.
  const HfTokenizer ranked = HfTokenizer::from_json(
      with(mini_json(R"(["b c", "a b", "ab c"])", R"( "dropout": null, "unk_token": null,)"), R"("abc": 4,)",
           R"("abc": 4, "bc": 6,)"),
      "ranked.json");
  EXPECT_EQ(ranked.encode("abc"), (std::vector<int64_t>{0, 6}));
}

void expect_load_error(const std::string& json, const std::string& needle, const std::string& config = "") {
  try {
    HfTokenizer::from_json(json, "bad/tokenizer.json", config);
    ADD_FAILURE() << "no error; expected one containing: " << needle;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("bad/tokenizer.json"), std::string::npos) << message;
    EXPECT_NE(message.find(needle), std::string::npos) << "expected '" << needle << "' in: " << message;
  }
}

TEST(HfTokenizer, BadFilesNameTheFileAndTheProblem) {
  try {
    HfTokenizer("/nonexistent/dir/tokenizer.json");
    ADD_FAILURE() << "no error for a missing file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/tokenizer.json"), std::string::npos) << e.what();
  }
  expect_load_error("{\"model\": ", "invalid JSON");
  expect_load_error("[1, 2]", "expected object");
  expect_load_error(R"({"decoder": {"type": "ByteLevel"}})", "model: missing");
  expect_load_error(with(mini_json(), "\"vocab\"", "\"vocabulary\""), "model.vocab: missing");
  expect_load_error(with(mini_json(), "\"BPE\"", "\"WordPiece\""), "unsupported model type \"WordPiece\"");
  expect_load_error(mini_json(R"(["a b", "ab z"])"), "model.merges[1]: token \"z\" is not in the vocab");
  expect_load_error(mini_json(R"(["a b c"])"), "model.merges[0]: expected \"left right\"");
  expect_load_error(mini_json(R"(["a b"])", R"( "dropout": 0.1,)"), "model.dropout: BPE dropout is not supported");
  expect_load_error(mini_json(R"(["a b"])", R"( "byte_fallback": true,)"), "byte_fallback is not supported");
  expect_load_error(with(mini_json(), "\\\\p{N}|", "\\\\w+|"), "unsupported pre-tokenizer regex");
  expect_load_error(with(mini_json(), "\"use_regex\": false", "\"use_regex\": true"), "use_regex: must be false");
  expect_load_error(with(mini_json(), "\"Sequence\"", "\"Whitespace\""), "unsupported pre-tokenizer \"Whitespace\"");
  expect_load_error(with(mini_json(), "\"normalizer\": null", R"("normalizer": {"type": "NFKC"})"),
                    "unsupported normalizer \"NFKC\"");
  expect_load_error(with(mini_json(), "\"special\": true", R"("special": true, "lstrip": true)"),
                    "added_tokens[0].lstrip");
  expect_load_error(with(mini_json(), R"("decoder": {"type": "ByteLevel"})", R"("decoder": null)"), "decoder: missing");
  expect_load_error(mini_json(), "\"</s>\" is not in the tokenizer", R"({"eos_token": "</s>"})");
  try {
    HfTokenizerOptions five;
    five.gist_levels = 5;
    HfTokenizer::from_json(mini_json(), "mini.json", "", five);
    ADD_FAILURE() << "gist_levels 5 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gist_levels must be 1..4, got 5"), std::string::npos) << e.what();
  }
}

TEST(HfTokenizer, WorksThroughTheTokenizerInterface) {
  const HfTokenizer hf = HfTokenizer::from_json(mini_json(), "mini.json");
  const Tokenizer& tok = hf;
  EXPECT_EQ(tok.encode("abc"), (std::vector<int64_t>{4}));
  EXPECT_EQ(tok.decode({3, 5}), "ab ");
  EXPECT_EQ(tok.word_starts({3, 5, 7, 8}), (std::vector<uint8_t>{0, 1, 1, 1}));
  EXPECT_EQ(tok.gist_id(2), 10);
  EXPECT_TRUE(tok.is_gist(9));
  EXPECT_EQ(tok.vocab_size(), 11);
}

TEST(UnicodeText, ReplacementFollowsTheMaximalSubpartRule) {
  // Expected strings from Python's bytes.decode("utf-8", "replace"), which applies the same rule as Rust.
  EXPECT_EQ(unicode::to_valid_utf8("a\xf0\x9f\x98"), "a\xef\xbf\xbd");                   // truncated: one U+FFFD
  EXPECT_EQ(unicode::to_valid_utf8("\xe0\x80"), "\xef\xbf\xbd\xef\xbf\xbd");            // E0 80: bad second byte
  EXPECT_EQ(unicode::to_valid_utf8("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // a surrogate
  EXPECT_EQ(unicode::to_valid_utf8("\xc3\xa9\xff"), "\xc3\xa9\xef\xbf\xbd");
  EXPECT_EQ(unicode::to_nfc("e\xcc\x81"), "\xc3\xa9");                    // e + U+0301 -> U+00E9
  EXPECT_EQ(unicode::to_nfc("\xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8"), "\xea\xb0\x81");  // jamo -> U+AC01
  EXPECT_EQ(unicode::to_nfc("\xe2\x84\xab"), "\xc3\x85");                 // U+212B ANGSTROM SIGN -> U+00C5
  EXPECT_EQ(unicode::to_nfc("a\xff\xcc\x81"), "a\xff\xcc\x81");           // an invalid byte blocks composition
}

}  // namespace
}  // namespace gsa
