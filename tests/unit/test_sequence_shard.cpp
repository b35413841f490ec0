// Sequence sharding (parallel/sequence_shard.h): cuts at top-level section boundaries, balanced; explicit cuts
// validated with messages that name the problem; the owner lookup agrees with the boundaries; the work and
// measured-cost cuts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "gsa/parallel/sequence_shard.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/mask_predicate.h"
#include "common/error_of.h"

namespace gsa {
namespace {

using gsa::test_support::error_of;

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

// The keys query q sees under the gist mask (the oracle: the mask's own predicate, pair by pair).
int64_t exact_keys(const GistLayout& row, int64_t q) {
  int64_t n = 0;
  for (int64_t k = 0; k <= q; ++k) n += gist_mask_allowed(row, q, k);
  return n;
}

// Exact work of each shard: per_token + per_key x the mask's key count, summed over its positions.
std::vector<double> exact_shard_work(const GistLayout& row, const SequenceShards& shards, const WorkModel& w) {
  std::vector<double> out(static_cast<size_t>(shards.num_shards()), 0.0);
  for (int64_t q = 0; q < row.size(); ++q) {
    out[static_cast<size_t>(shards.owner(q))] += w.per_token + w.per_key * static_cast<double>(exact_keys(row, q));
  }
  return out;
}

TEST(SequenceShard, UniformWorkGivesTheSectionCuts) {
  for (int64_t levels : {1, 2}) {
    const std::vector<GistLayout> rows{layout(levels, 400, 8)};
    for (int64_t sp : {1, 2, 3, 4}) {
      EXPECT_EQ(shard_by_work(rows, sp, WorkModel{1, 0}).begin, shard_at_sections(rows, sp).begin) << sp;
    }
  }
}

// position_work estimates the mask's key count per query from the gist frontier; it may miss the previous
// sections' lower-level gists and count level-0 gists of the local window twice: at most (prev_chunks + 1) x
// fanout per level below the top, plus one chunk of window (here 1 previous chunk, fanout 2, chunk 4).
TEST(SequenceShard, PositionWorkFollowsTheMasksKeyCount) {
  for (int64_t levels : {1, 2}) {
    const GistLayout row = layout(levels, 300, 8);
    const std::vector<double> work = position_work(row, WorkModel{0, 1});
    const double bound = 2.0 * 2 * levels + 4;
    for (int64_t q = 0; q < row.size(); ++q) {
      EXPECT_NEAR(work[static_cast<size_t>(q)], static_cast<double>(exact_keys(row, q)), bound)
          << "levels " << levels << " query " << q;
    }
  }
}

// Cut by work, the heaviest shard's exact work (the mask's key counts) is lighter than with the even cut of
// positions, and the cuts still follow top-level gists.
TEST(SequenceShard, WorkCutLightensTheHeaviestShard) {
  const WorkModel w{8, 1};  // attention-heavy: 8 key-equivalents per position
  for (int64_t levels : {1, 2}) {
    const std::vector<GistLayout> rows{layout(levels, 600, 8)};
    const GistLayout& row = rows[0];
    for (int64_t sp : {2, 4}) {
      const SequenceShards even = shard_at_sections(rows, sp), by_work = shard_by_work(rows, sp, w);
      const std::vector<double> a = exact_shard_work(row, even, w), b = exact_shard_work(row, by_work, w);
      const double max_even = *std::max_element(a.begin(), a.end());
      const double max_work = *std::max_element(b.begin(), b.end());
      EXPECT_LT(max_work, 0.9 * max_even) << "levels " << levels << " sp " << sp << ": " << even.describe()
                                          << " vs " << by_work.describe();
      for (int64_t r = 1; r < sp; ++r) EXPECT_EQ(row.level[by_work.shard_begin(r) - 1], levels - 1);
      // shard_work is position_work summed per shard.
      const std::vector<double> estimated = shard_work(rows, by_work, w);
      const std::vector<double> per_pos = position_work(row, w);
      for (int64_t r = 0; r < sp; ++r) {
        double sum = 0;
        for (int64_t q = by_work.shard_begin(r); q < by_work.shard_begin(r + 1); ++q) sum += per_pos[q];
        EXPECT_NEAR(estimated[static_cast<size_t>(r)], sum, 1e-9 * sum);
      }
    }
  }
  EXPECT_NE(error_of([] { shard_by_work({layout(1, 40, 2)}, 2, WorkModel{0, 0}); }).find("not both 0"),
            std::string::npos);
}

// The placement's weights per backend: CUDA cuts by the FLOP weights (the keys count), CPU by the tokens alone,
// so on a CPU the work cut is the section cut while on CUDA it moves.
TEST(SequenceShard, PlacementWorkModelFollowsTheBackend) {
  ModelOptions model;
  model.hidden_size = 64;
  model.intermediate_size = 176;
  model.num_heads = 4;
  model.num_kv_heads = 1;
  model.head_dim = 16;
  const WorkModel flops = work_model_of(model);
  EXPECT_EQ(flops.per_token, 64.0 * (2 * 64 + 2 * 16) + 3 * 64 * 176);
  EXPECT_EQ(flops.per_key, 2.0 * 64);
  const WorkModel cuda = placement_work_model(model, at::kCUDA), cpu = placement_work_model(model, at::kCPU);
  EXPECT_EQ(cuda.per_token, flops.per_token);
  EXPECT_EQ(cuda.per_key, flops.per_key);
  EXPECT_EQ(cpu.per_token, flops.per_token);
  EXPECT_EQ(cpu.per_key, 0.0);
  const std::vector<GistLayout> rows{layout(2, 600, 8)};
  EXPECT_EQ(shard_by_work(rows, 4, cpu).begin, shard_at_sections(rows, 4).begin);
  EXPECT_NE(shard_by_work(rows, 4, cuda).begin, shard_at_sections(rows, 4).begin);
}

// shard_by_measured_cost: rank 1 of the section cut was 3x as busy as rank 0, so its positions cost 3x as much
// each; the new cut puts the cost split (rank 0's shard plus a third of rank 1's) within one section of the
// even split of that cost, past the section cut. Equal times keep the section cut; all zero times too.
TEST(SequenceShard, MeasuredCostCutBalancesTheMeasuredTimes) {
  const std::vector<GistLayout> rows{layout(2, 400, 8)};
  const SequenceShards sections = shard_at_sections(rows, 2);
  const SequenceShards moved = shard_by_measured_cost(rows, 2, sections, {1.0, 3.0});
  const double n0 = static_cast<double>(sections.shard_size(0)), n1 = static_cast<double>(sections.shard_size(1));
  const double target = n0 + n1 / 3;     // where the cost charged to the positions before it is half of 4
  const double section = 4 * 2 + 2 + 1;  // positions per top-level section: 2 chunks of 4, their 2 gists, 1 above
  EXPECT_GT(moved.shard_begin(1), sections.shard_begin(1));
  EXPECT_LE(std::abs(static_cast<double>(moved.shard_begin(1)) - target), section) << moved.describe();
  EXPECT_EQ(rows[0].level[moved.shard_begin(1) - 1], 1);  // just after a top-level gist
  EXPECT_EQ(shard_by_measured_cost(rows, 2, sections, {5.0, 5.0}).begin, sections.begin);
  EXPECT_EQ(shard_by_measured_cost(rows, 2, sections, {0.0, 0.0}).begin, sections.begin);
  EXPECT_EQ(shard_by_measured_cost(rows, 4, sections, {1.0, 1.0}).num_shards(), 4);  // re-cut over more ranks
  EXPECT_NE(error_of([&] { shard_by_measured_cost(rows, 2, sections, {1.0}); }).find("1 times for 2 measured shards"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              shard_by_measured_cost(rows, 2, sections, {1.0, -1.0});
            }).find("a measured time is -1"),
            std::string::npos);
}

}  // namespace
}  // namespace gsa
