// ByteTokenizer: byte round trips, special-token rendering, word starts, gist ids, and the same through the
// Tokenizer interface.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "gsa/runtime/error.h"
#include "gsa/runtime/tokenizer.h"

namespace gsa {
namespace {

TEST(ByteTokenizer, EncodesEveryByteAsItsValue) {
  const ByteTokenizer tok;
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::vector<int64_t> ids = tok.encode(all);
  ASSERT_EQ(ids.size(), 256u);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(ids[b], b);
  EXPECT_EQ(tok.decode(ids), all);
}

TEST(ByteTokenizer, RoundTripsArbitraryBytes) {
  const ByteTokenizer tok;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> byte(0, 255), length(0, 300);
  for (int trial = 0; trial < 50; ++trial) {
    std::string text;
    const int n = length(rng);
    for (int i = 0; i < n; ++i) text.push_back(static_cast<char>(byte(rng)));
    const std::vector<int64_t> ids = tok.encode(text);
    ASSERT_EQ(ids.size(), text.size());
    for (int64_t id : ids) {
      EXPECT_GE(id, 0);
      EXPECT_LT(id, 256);  // encode never emits specials
    }
    EXPECT_EQ(tok.decode(ids), text) << "trial " << trial;
  }
}

TEST(ByteTokenizer, RoundTripsNulHighBytesAndUtf8) {
  const ByteTokenizer tok;
  const std::string text = std::string("a\0b", 3) + "\xff\xfe" + "h\xc3\xa9llo \xe2\x80\x94 \xf0\x9f\x98\x80";
  const std::vector<int64_t> ids = tok.encode(text);
  ASSERT_EQ(ids.size(), text.size());
  EXPECT_EQ(ids[1], 0);
  EXPECT_EQ(ids[3], 0xff);
  EXPECT_EQ(ids[4], 0xfe);
  EXPECT_EQ(ids[6], 0xc3);  // first byte of U+00E9
  EXPECT_EQ(tok.decode(ids), text);
  EXPECT_TRUE(tok.encode("").empty());
  EXPECT_EQ(tok.decode({}), "");
}

TEST(ByteTokenizer, DecodesSpecials) {
  const ByteTokenizer tok;
  const std::vector<int64_t> ids = {ByteTokenizer::kBos, 'h', 'i', ByteTokenizer::gist_id(0), ByteTokenizer::gist_id(1),
                                    ByteTokenizer::gist_id(2), ByteTokenizer::gist_id(3), ByteTokenizer::kPad,
                                    ByteTokenizer::kEos};
  EXPECT_EQ(tok.decode(ids), "<bos>hi<gist0><gist1><gist2><gist3><pad><eos>");
}

TEST(ByteTokenizer, DecodeRejectsIdsOutsideTheVocabulary) {
  const ByteTokenizer tok;
  EXPECT_THROW(tok.decode({'a', ByteTokenizer::kVocabSize}), Error);
  EXPECT_THROW(tok.decode({-1}), Error);
}

TEST(ByteTokenizer, GistIds) {
  EXPECT_EQ(ByteTokenizer::vocab_size(), 263);
  for (int64_t level = 0; level < ByteTokenizer::kMaxGistLevels; ++level) {
    const int64_t id = ByteTokenizer::gist_id(level);
    EXPECT_EQ(id, 259 + level);
    EXPECT_TRUE(ByteTokenizer::is_gist(id));
  }
  EXPECT_FALSE(ByteTokenizer::is_gist(ByteTokenizer::kEos));
  EXPECT_FALSE(ByteTokenizer::is_gist(ByteTokenizer::kVocabSize));
  EXPECT_FALSE(ByteTokenizer::is_gist('a'));
  EXPECT_THROW(ByteTokenizer::gist_id(-1), Error);
  EXPECT_THROW(ByteTokenizer::gist_id(4), Error);
  try {
    ByteTokenizer::gist_id(7);
    FAIL() << "gist_id(7) did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("7"), std::string::npos) << e.what();
  }
}

std::string starts_as_string(const std::vector<uint8_t>& starts) {
  std::string s;
  for (uint8_t v : starts) s.push_back(v ? '1' : '0');
  return s;
}

TEST(ByteTokenizer, WordStartsOnKnownStrings) {
  const ByteTokenizer tok;
  // A token starts a word when its own byte is whitespace or a boundary character.
  EXPECT_EQ(starts_as_string(tok.word_starts(tok.encode("hello world"))), "00000100000");
  EXPECT_EQ(starts_as_string(tok.word_starts(tok.encode("a,b.c;d:e!f?g-h"))), "010101010101010");
  EXPECT_EQ(starts_as_string(tok.word_starts(tok.encode("(x)[y]{z}\"q'"))), "101101101101");
  EXPECT_EQ(starts_as_string(tok.word_starts(tok.encode("a\tb\nc\rd"))), "0101010");
  // Letters, digits, other punctuation and non-ASCII bytes are not boundaries.
  EXPECT_EQ(starts_as_string(tok.word_starts(tok.encode("Az09_/@#\xc3\xa9"))), "0000000000");
  EXPECT_TRUE(tok.word_starts({}).empty());
}

TEST(ByteTokenizer, SpecialsAreWordStarts) {
  const ByteTokenizer tok;
  const std::vector<int64_t> ids = {'a', ByteTokenizer::gist_id(0), 'b', ByteTokenizer::kBos, ByteTokenizer::kPad,
                                    'c', ByteTokenizer::kEos};
  EXPECT_EQ(starts_as_string(tok.word_starts(ids)), "0101101");
}

TEST(ByteTokenizer, WorksThroughTheTokenizerInterface) {
  const ByteTokenizer byte_tokenizer;
  const Tokenizer& tok = byte_tokenizer;
  const std::string text = "Hi, \xc3\xa9!";
  EXPECT_EQ(tok.encode(text), byte_tokenizer.encode(text));
  EXPECT_EQ(tok.decode(tok.encode(text)), text);
  EXPECT_EQ(starts_as_string(tok.word_starts(tok.encode(text))), "0011001");
  EXPECT_EQ(tok.vocab_size(), ByteTokenizer::kVocabSize);
  EXPECT_EQ(tok.max_gist_levels(), ByteTokenizer::kMaxGistLevels);
  for (int64_t level = 0; level < tok.max_gist_levels(); ++level) {
    EXPECT_EQ(tok.gist_id(level), ByteTokenizer::kFirstGist + level);
    EXPECT_TRUE(tok.is_gist(tok.gist_id(level)));
  }
  EXPECT_FALSE(tok.is_gist('a'));
  EXPECT_THROW(tok.gist_id(tok.max_gist_levels()), Error);
  EXPECT_EQ(tok.bos_id(), std::optional<int64_t>(ByteTokenizer::kBos));
  EXPECT_EQ(tok.eos_id(), std::optional<int64_t>(ByteTokenizer::kEos));
  EXPECT_THROW(tok.decode({ByteTokenizer::kVocabSize}), Error);
}

}  // namespace
}  // namespace gsa
