// ModelTokenizer (runtime/model_tokenizer.h): the model config's gist ids over a text tokenizer, and generation
// limited to ids the tokenizer can decode (SamplingOptions::vocab_limit). Oracle: the byte tokenizer itself and
// the config's numbers.
#include <gtest/gtest.h>

#include <limits>
#include <memory>

#include "gsa/runtime/error.h"
#include "gsa/runtime/generation.h"
#include "gsa/runtime/gist_layout.h"
#include "gsa/runtime/model_tokenizer.h"
#include "common/error_of.h"

namespace gsa {
namespace {

using gsa::test_support::error_of;

TEST(ModelTokenizer, GistIdsAfterTheTextVocabulary) {
  ModelOptions model;
  model.vocab_size = 1000;
  model.gist_token_ids = {990, 991};
  const ModelTokenizer tokenizer(std::make_shared<ByteTokenizer>(), model, 2);
  EXPECT_EQ(tokenizer.vocab_size(), 1000);
  EXPECT_EQ(tokenizer.text_vocab_size(), ByteTokenizer::kVocabSize);
  EXPECT_EQ(tokenizer.gist_ids(), (std::vector<int64_t>{990, 991}));
  EXPECT_TRUE(tokenizer.is_gist(991));
  EXPECT_FALSE(tokenizer.is_gist(ByteTokenizer::kFirstGist));
  EXPECT_EQ(tokenizer.encode("ab"), ByteTokenizer().encode("ab"));
  EXPECT_EQ(tokenizer.decode({'h', 990, 'i', 991}), "h<gist0>i<gist1>");
  EXPECT_EQ(error_of([&] { tokenizer.decode({'a', 500}); }),
            "decode: id 500 at position 1 is neither a text token (the tokenizer has ids 0..262) nor a gist of the model");
  EXPECT_EQ(tokenizer.word_starts({'a', 990, 'b', ' '}), (std::vector<uint8_t>{0, 1, 0, 1}));
  // The layout's gists carry the config's ids.
  GistOptions gist;
  gist.sink = 0;
  gist.chunk = 2;
  gist.levels = 2;
  Document doc;
  doc.context = tokenizer.encode("abcdefgh");
  const GistLayout layout = build_layout({doc}, gist, tokenizer);
  for (int64_t t = 0; t < layout.size(); ++t) {
    if (layout.is_gist(t)) {
      EXPECT_EQ(layout.tokens[t], 990 + layout.level[t]);
    }
  }
  EXPECT_EQ(layout.gist_token_ids, (std::vector<int64_t>{990, 991}));
}

TEST(ModelTokenizer, RefusesGistIdsThatAreTextTokens) {
  ModelOptions model;  // vocab 264, no gist ids: the byte tokenizer's own gists, accepted
  EXPECT_NO_THROW(ModelTokenizer(std::make_shared<ByteTokenizer>(), model, 4));
  model.gist_token_ids = {100};
  EXPECT_EQ(error_of([&] { ModelTokenizer(std::make_shared<ByteTokenizer>(), model, 1); }),
            "the model's level-0 gist id 100 (model.gist_token_ids) is inside the tokenizer's vocabulary, where it is "
            "not its gist (the tokenizer's level-0 gist is 259)");
  model.gist_token_ids = {300};
  EXPECT_EQ(error_of([&] { ModelTokenizer(std::make_shared<ByteTokenizer>(), model, 1); }),
            "the level-0 gist id 300 is outside model.vocab_size = 264");
  model.gist_token_ids = {};
  model.vocab_size = 200;
  EXPECT_EQ(error_of([&] { ModelTokenizer(std::make_shared<ByteTokenizer>(), model, 1); }),
            "the tokenizer has 263 ids, more than model.vocab_size = 200");
}

TEST(Sampler, VocabLimitIsNeverExceeded) {
  at::Tensor logits = at::zeros({1000});
  logits[700] = 50;  // the best id is a spare row the tokenizer cannot decode
  logits[42] = 5;
  SamplingOptions greedy;
  greedy.vocab_limit = 263;
  EXPECT_EQ(Sampler(greedy, {}).sample(logits), 42);
  SamplingOptions hot = greedy;
  hot.temperature = 100;
  hot.seed = 3;
  Sampler sampler(hot, {42});
  for (int i = 0; i < 200; ++i) {
    const int64_t id = sampler.sample(logits);
    EXPECT_LT(id, 263);
    EXPECT_NE(id, 42);
  }
  greedy.vocab_limit = 0;  // no limit
  EXPECT_EQ(Sampler(greedy, {}).sample(logits), 700);
}

// Every gist id the text tokenizer reserves stays out of a completion, also the levels a model does not use: a
// one-level model on the byte tokenizer must not write its ids 260..262 (they decode as "<gist1>".."<gist3>"), nor a
// model whose gists are its own rows (990, 991) the byte tokenizer's 259..262. Oracle: the ids listed by hand.
TEST(ModelTokenizer, LimitSamplingKeepsEveryReservedGistOut) {
  const ModelTokenizer one_level(std::make_shared<ByteTokenizer>(), ModelOptions{}, 1);
  SamplingOptions hot;
  hot.temperature = 100;
  hot.seed = 5;
  hot.never_tokens = {7};  // the caller's own stay
  one_level.limit_sampling(&hot);
  EXPECT_EQ(hot.vocab_limit, 263);
  EXPECT_EQ(hot.never_tokens, (std::vector<int64_t>{7, 259, 260, 261, 262}));
  at::Tensor logits = at::zeros({264});
  logits.narrow(0, 259, 5).fill_(60);  // every gist and the spare row 263 far ahead of the text ids
  logits[7] = 60;
  logits[65] = 5;
  SamplingOptions greedy = hot;
  greedy.temperature = 0;
  EXPECT_EQ(Sampler(greedy, {}).sample(logits), 65);
  Sampler sampler(hot, {});
  for (int i = 0; i < 300; ++i) {
    const int64_t id = sampler.sample(logits);
    EXPECT_LT(id, 259);
    EXPECT_NE(id, 7);
  }

  ModelOptions own_rows;
  own_rows.vocab_size = 1000;
  own_rows.gist_token_ids = {990, 991};
  SamplingOptions options;
  ModelTokenizer(std::make_shared<ByteTokenizer>(), own_rows, 2).limit_sampling(&options);
  EXPECT_EQ(options.vocab_limit, 263);
  EXPECT_EQ(options.never_tokens, (std::vector<int64_t>{990, 991, 259, 260, 261, 262}));
}

}  // namespace
}  // namespace gsa
