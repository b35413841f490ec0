// Gist layout and mask predicate: the worked examples of method sections 3 and 5.1-5.4 as golden strings,
// structural invariants on random layouts, and the tensor predicate against the scalar rule.
#include <gtest/gtest.h>

#include <random>

#include "gsa/runtime/gist_layout.h"
#include "gsa/runtime/mask_predicate.h"
#include "gsa/runtime/tokenizer.h"

namespace gsa {
namespace {

std::vector<int64_t> raw(int64_t n) {
  std::vector<int64_t> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = 'a' + i % 26;
  return v;
}

GistOptions opts(int64_t sink, int64_t chunk, int64_t fanout, int64_t levels, int64_t prev) {
  GistOptions o;
  o.sink = sink;
  o.chunk = chunk;
  o.fanout = fanout;
  o.levels = levels;
  o.prev_chunks = prev;
  return o;
}

// One string per query row: '1' attended, '.' not, for keys 0..q.
std::vector<std::string> mask_rows(const GistLayout& layout) {
  std::vector<std::string> rows;
  for (int64_t q = 0; q < layout.size(); ++q) {
    std::string r;
    for (int64_t k = 0; k <= q; ++k) r.push_back(gist_mask_allowed(layout, q, k) ? '1' : '.');
    rows.push_back(r);
  }
  return rows;
}

TEST(GistLayout, ReferenceChunk4Sink3Example) {
  // Method 3.1: 7 raw (3 sink + 4), g, 4 raw, g, ... ; a final gist closes the context.
  GistLayout l = build_layout({Document{raw(15), {}, {}}}, opts(3, 4, 4, 1, 1));
  EXPECT_EQ(render_layout(l), ".......0....0....0");
  EXPECT_EQ(l.tokens[7], ByteTokenizer::gist_id(0));
  // RoPE: a gist shares the position of the raw token before it.
  EXPECT_EQ(l.rope_pos[6], 6);
  EXPECT_EQ(l.rope_pos[7], 6);
  EXPECT_EQ(l.rope_pos[8], 7);
}

TEST(GistLayout, TwoLevelsEndWithOneFinalGistPerLevel) {
  GistLayout l = build_layout({Document{raw(9), {}, {}}}, opts(1, 2, 2, 2, 1));
  EXPECT_EQ(render_layout(l), "...0..01..0..01");
  GistLayout three = build_layout({Document{raw(8), {}, {}}}, opts(0, 1, 2, 3, 1));
  EXPECT_EQ(render_layout(three), ".0.01.0.012.0.01.0.012");
  // RoPE positions: r0 r1 r2 r3 g G r4 -> 0 1 2 3 3 3 4 (method section 4).
  GistLayout gG = build_layout({Document{raw(4), {}, raw(1)}}, opts(0, 4, 2, 2, 1));
  EXPECT_EQ(render_layout(gG), "....01.");
  EXPECT_EQ(gG.rope_pos, (std::vector<int64_t>{0, 1, 2, 3, 3, 3, 4}));
}

TEST(GistLayout, WordAwareShiftMovesToNextWordStartWithinHalfChunk) {
  Document d{raw(12), std::vector<uint8_t>(12, 0), {}};
  d.context_word_starts[6] = 1;  // target is before index 4 (c=4, sink 0); next word start 6 (shift 2 = c/2)
  d.context_word_starts[11] = 1;
  GistOptions o = opts(0, 4, 4, 1, 1);
  o.word_aware = true;
  GistLayout l = build_layout({d}, o);
  // chunk 1: 6 tokens (shifted), chunk 2: target before index 10 is no word start, 11 is within 2: shift by 1.
  EXPECT_EQ(render_layout(l), "......0.....0.0");
  o.word_aware = false;
  EXPECT_EQ(render_layout(build_layout({d}, o)), "....0....0....0");
}

TEST(GistLayout, ContextOfOneToSinkTokensGetsItsFinalGistsAsTheReference) {
  // Issue 9 (the authors' insert functions append the final gists whenever the document has any token).
  EXPECT_EQ(render_layout(build_layout({Document{raw(1), {}, {}}}, opts(3, 4, 4, 1, 1))), ".0");
  EXPECT_EQ(render_layout(build_layout({Document{raw(1), {}, {}}}, opts(3, 4, 4, 2, 1))), ".01");
  EXPECT_EQ(render_layout(build_layout({Document{raw(3), {}, {}}}, opts(3, 4, 4, 1, 1))), "...0");
  EXPECT_EQ(render_layout(build_layout({Document{raw(3), {}, {}}}, opts(3, 4, 4, 2, 1))), "...01");
  GistLayout l = build_layout({Document{raw(2), {}, raw(2)}}, opts(3, 4, 4, 1, 1));
  ASSERT_EQ(render_layout(l), "..0..");
  EXPECT_EQ(l.suffix, (std::vector<uint8_t>{0, 0, 0, 1, 1}));
  EXPECT_EQ(l.sink, (std::vector<uint8_t>{1, 1, 0, 0, 0}));  // the gist at 2 < sink is a gist key, not a sink
  EXPECT_EQ(l.rope_pos, (std::vector<int64_t>{0, 1, 1, 2, 3}));
}

TEST(GistLayout, EmptyContextGetsNoGistsAndSuffixIsRaw) {
  GistLayout l = build_layout({Document{{}, {}, raw(3)}}, opts(3, 4, 4, 2, 1));
  EXPECT_EQ(render_layout(l), "...");
  for (int64_t t = 0; t < l.size(); ++t) EXPECT_TRUE(l.suffix[t]);
  // No gist: plain causal mask.
  for (const auto& row : mask_rows(l)) EXPECT_EQ(row, std::string(row.size(), '1'));
}

TEST(GistMask, MethodSection54WorkedExample) {
  // 1 2 3 G 4 5 6 G 7 8 G, c = 3, s = 0, N = 0.
  GistLayout l = build_layout({Document{raw(8), {}, {}}}, opts(0, 3, 2, 1, 0));
  ASSERT_EQ(render_layout(l), "...0...0..0");
  const std::vector<std::string> expected = {
      "1", "11", "111", "1111",
      "...11", "...111", "...1111", "...11111",
      "...1...11", "...1...111", "...1...1111"};
  EXPECT_EQ(mask_rows(l), expected);
}

TEST(GistMask, MethodSection51SingleLevelWithSinkAndPreviousChunk) {
  // s = 2, c = 2, N = 1: sink, every earlier gist, own and previous chunk.
  GistLayout l = build_layout({Document{raw(8), {}, raw(1)}}, opts(2, 2, 2, 1, 1));
  ASSERT_EQ(render_layout(l), "....0..0..0.");
  const std::vector<std::string> expected = {
      "1", "11", "111", "1111", "11111",
      "111111", "1111111", "11111111",
      "11..11111", "11..111111", "11..1111111",   // chunk 2: sink, g at 4, chunk 1 (5-7), own chunk
      "11..1..11111"};                             // suffix: sink, all gists, chunk 2, itself
  EXPECT_EQ(mask_rows(l), expected);
}

TEST(GistMask, MethodSection52TwoLevels) {
  GistLayout l = build_layout({Document{raw(9), {}, {}}}, opts(1, 2, 2, 2, 1));
  ASSERT_EQ(render_layout(l), "...0..01..0..01");
  auto rows = mask_rows(l);
  EXPECT_EQ(rows[7], "1..1..11");           // G: sink, the g's it summarises, itself
  EXPECT_EQ(rows[8], "1..111111");          // raw: sink, G, g's of this + previous section, local window
  EXPECT_EQ(rows[13], "1..1..11111111");    // g: as raw, its chunk and the previous one
  EXPECT_EQ(rows[14], "1..1..11..1..11");   // final G: no raw tokens
}

TEST(GistMask, ThreeLevelsPreviousSectionOnlyForQueriesNotAboveTheSection) {
  // Issue 9: N = 1, S = 0, C0 = 1, C1 = 2, L = 3; the reference's level-2 gist at q = 3 sees "..11".
  GistLayout l = build_layout({Document{raw(1), {}, {}}}, opts(0, 1, 2, 3, 1));
  ASSERT_EQ(render_layout(l), ".012");
  EXPECT_EQ(mask_rows(l), (std::vector<std::string>{"1", "11", ".11", "..11"}));
  // Longer 3-level layout: a level-2 gist sees its own level-1 gists and no level-0 gist, while a level-1 gist
  // (the section's own level) keeps the level-0 gists of the previous level-1 section.
  GistLayout m = build_layout({Document{raw(8), {}, {}}}, opts(0, 1, 2, 3, 1));
  ASSERT_EQ(render_layout(m), ".0.01.0.012.0.01.0.012");
  auto rows = mask_rows(m);
  EXPECT_EQ(rows[10], "....1....11");              // level-2 gist: its level-1 gists 4 and 9, itself
  EXPECT_EQ(rows[15], "....1.1.111.1.11");         // level-1 gist: level-1 gists of the previous level-2
                                                    // section, the top gist, level-0 gists 6, 8 and 12, 14
  EXPECT_EQ(rows[20], "....1....11.1.11.1.11");    // level-1 gist: level-0 gists of its own and the previous
                                                    // level-1 section
  EXPECT_EQ(rows[21], "....1....11....1....11");   // final level-2 gist: level-1 and level-2 gists only
}

TEST(GistMask, PackedDocumentsNeverSeeEachOther) {
  GistLayout l = build_layout({Document{raw(6), {}, raw(1)}, Document{raw(5), {}, raw(2)}}, opts(1, 2, 2, 1, 1));
  for (int64_t q = 0; q < l.size(); ++q) {
    for (int64_t k = 0; k <= q; ++k) {
      if (l.doc[q] != l.doc[k]) {
        EXPECT_FALSE(gist_mask_allowed(l, q, k)) << q << "," << k;
      }
    }
  }
  // The second document has its own sink and RoPE positions restart.
  const int64_t s2 = l.doc_start[1];
  EXPECT_TRUE(l.sink[s2]);
  EXPECT_EQ(l.rope_pos[s2], 0);
}

TEST(GistMask, TensorPredicateEqualsScalarRuleOnRandomLayouts) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 40; ++trial) {
    GistOptions o = opts(rng() % 4, 1 + rng() % 4, 2 + rng() % 3, 1 + rng() % 4, rng() % 3);
    std::vector<Document> docs;
    for (int d = 0, n = 1 + rng() % 3; d < n; ++d) docs.push_back(Document{raw(rng() % 30), {}, raw(rng() % 4)});
    GistLayout l = build_layout(docs, o);
    if (l.size() == 0) continue;
    TokenMeta meta = make_token_meta({&l}, l.size(), at::kCPU);
    at::Tensor q = meta.fields.unsqueeze(2);  // [1, T, 1, F]
    at::Tensor k = meta.fields.unsqueeze(1);  // [1, 1, T, F]
    at::Tensor mask = gist_mask_allowed(TokenMeta{q}, TokenMeta{k}, o.levels, o.prev_chunks)[0];
    auto acc = mask.accessor<bool, 2>();
    for (int64_t a = 0; a < l.size(); ++a)
      for (int64_t b = 0; b < l.size(); ++b)
        ASSERT_EQ(acc[a][b], gist_mask_allowed(l, a, b)) << "trial " << trial << " q " << a << " k " << b;
  }
}

TEST(GistLayout, ChunkIdsAndAppendRawAreConsistent) {
  GistLayout l = build_layout({Document{raw(11), {}, raw(2)}}, opts(3, 4, 2, 2, 1));
  const int64_t before = l.size();
  l.append_raw('z');
  ASSERT_EQ(l.size(), before + 1);
  EXPECT_EQ(l.rope_pos.back(), l.rope_pos[before - 1] + 1);
  EXPECT_TRUE(l.suffix.back());
  for (int64_t lev = 0; lev < 2; ++lev) EXPECT_EQ(l.chunk[lev].back(), (int32_t)l.gist_pos[lev].size());
  GistLayout rebuilt = build_layout({Document{raw(11), {}, [] { auto s = raw(2); s.push_back('z'); return s; }()}},
                                    opts(3, 4, 2, 2, 1));
  EXPECT_EQ(rebuilt.rope_pos, l.rope_pos);
  EXPECT_EQ(rebuilt.chunk, l.chunk);
}

}  // namespace
}  // namespace gsa
