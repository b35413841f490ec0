// Sequence sharding (parallel/sequence_shard.h): cuts at top-level section boundaries, balanced; explicit cuts
// validated with messages that name the problem; the owner lookup agrees with the boundaries.
#include <gtest/gtest.h>

#include <random>

#include "gsa/parallel/sequence_shard.h"
#include "gsa/runtime/error.h"

namespace gsa {
namespace {

GistLayout layout(int64_t levels, int64_t context, int64_t suffix) {
  std::mt19937 rng(5);
  Document doc;
  for (int64_t i = 0; i < context; ++i) doc.context.push_back(rng() % 256);
  for (int64_t i = 0; i < suffix; ++i) doc.suffix.push_back(rng() % 256);
  GistOptions g;
  g.levels = levels;
  g.chunk = 4;
  g.fanout = 2;
  g.sink = 2;
  return build_layout({doc}, g);
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(SequenceShard, CutsRightAfterTopLevelGistsAndBalances) {
  for (int64_t levels : {1, 2}) {
    const std::vector<GistLayout> rows{layout(levels, 400, 8)};
    const GistLayout& row = rows[0];
    for (int64_t sp : {2, 3, 4}) {
      SequenceShards shards = shard_at_sections(rows, sp);
      ASSERT_EQ(shards.num_shards(), sp);
      EXPECT_EQ(shards.length(), row.size());
      for (int64_t r = 1; r < sp; ++r) {
        const int64_t cut = shards.shard_begin(r);
        EXPECT_EQ(row.level[cut - 1], levels - 1) << "cut " << cut << " does not follow a top-level gist";
        // Within one top-level section of the even split.
        const int64_t section = 4 * (levels == 2 ? 2 : 1) + levels + 1;
        EXPECT_LE(std::llabs(cut - row.size() * r / sp), section) << "cut " << cut << " is not balanced";
      }
    }
  }
}

TEST(SequenceShard, FallsBackToEvenCutsWithoutSections) {
  const std::vector<GistLayout> rows{layout(1, 0, 11)};  // empty context: no gists at all
  SequenceShards shards = shard_at_sections(rows, 3);
  EXPECT_EQ(shards.begin, (std::vector<int64_t>{0, 3, 7, 11}));
}

TEST(SequenceShard, OwnersMatchBoundaries) {
  SequenceShards shards = shards_from_boundaries({0, 1, 5, 9}, 9);
  const std::vector<int64_t> expected{0, 1, 1, 1, 1, 2, 2, 2, 2};
  for (int64_t pos = 0; pos < 9; ++pos) EXPECT_EQ(shards.owner(pos), expected[pos]) << pos;
  at::Tensor pos = at::tensor(std::vector<int64_t>{-1, 0, 1, 4, 5, 8}, at::kLong);
  EXPECT_TRUE(at::equal(shards.owners(pos), at::tensor(std::vector<int64_t>{-1, 0, 1, 1, 2, 2}, at::kLong)));
  EXPECT_EQ(shards.describe(), "[0, 1) [1, 5) [5, 9)");
}

TEST(SequenceShard, BadInputsNameTheProblem) {
  EXPECT_NE(error_of([] { shards_from_boundaries({0, 4, 4, 9}, 9); }).find("shard 1 is empty"), std::string::npos);
  EXPECT_NE(error_of([] { shards_from_boundaries({1, 9}, 9); }).find("must start at 0"), std::string::npos);
  EXPECT_NE(error_of([] { shards_from_boundaries({0, 8}, 9); }).find("row length 9"), std::string::npos);
  const std::vector<GistLayout> rows{layout(1, 1, 2)};
  EXPECT_NE(error_of([&] { shard_at_sections(rows, 8); }).find("cannot be split over sp 8"), std::string::npos);
  EXPECT_NE(error_of([&] { SequenceShards{{0, 3, 6}}.owner(6); }).find("outside the sharded length"),
            std::string::npos);
}

}  // namespace
}  // namespace gsa
