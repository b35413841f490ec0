// The whole model sequence-parallel (and data-parallel) against one rank on the same global batch: the loss
// and the gradient of every parameter after GradientSync, for sp = the world (1, 2 or 4 ranks), dp x sp meshes,
// 1 and 2 levels, cpt and selective modes, packed documents, cuts at sections, by work and in awkward places.
// Tolerance: fp32 through two layers: loss |a - e| <= 1e-5 |e|; gradients |a - e| <= 2e-5 + 2e-4 |e|.
#include <gtest/gtest.h>

#include <algorithm>

#include "common/tolerance.h"
#include "gsa/parallel/gradient_sync.h"
#include "gsa/parallel/sp_model.h"
#include "gsa/runtime/error.h"
#include "mpi/mpi_test_env.h"
#include "mpi/sp_fixtures.h"

namespace gsa {
namespace {

struct Setup {
  int64_t dp, sp, levels;
  bool selective, awkward;
  bool by_work = false;  // shard_by_work's cut (the work-balanced placement)
};

void check(const Setup& s, uint32_t seed) {
  const ProcessGroups& groups = test::test_groups(s.dp, s.sp);
  LlamaModel model = LlamaModel::create(test::sp_tiny_model(), seed, groups.device);
  model.set_requires_grad(true);
  AttentionOptions attention;
  const int64_t rows_per_replica = 2;
  std::vector<GistLayout> global = test::sp_random_batch(s.levels, rows_per_replica * s.dp, seed);
  at::Tensor global_labels = test::sp_next_token_labels(global);
  test::SingleRankResult expected = test::single_rank_loss(model, global, global_labels, attention, s.selective);

  // This replica's rows, padded to their own longest row.
  const int64_t first = groups.mesh.dp_rank() * rows_per_replica;
  std::vector<GistLayout> rows(global.begin() + first, global.begin() + first + rows_per_replica);
  at::Tensor labels = test::sp_next_token_labels(rows);
  const int64_t length = padded_length(rows);
  SequenceShards shards = s.awkward   ? test::sp_awkward_shards(length, s.sp, seed + 7)
                          : s.by_work ? shard_by_work(rows, s.sp, work_model_of(test::sp_tiny_model()))
                                      : shard_at_sections(rows, s.sp);

  GradientSync sync(model.parameter_list(), groups.world, /*bucket_bytes=*/8 << 10);
  SpLossResult result = sp_next_token_loss(model, rows, labels, shards, attention, s.selective, *groups.sp,
                                           *groups.world);
  result.loss.backward();
  sync.finish();

  SCOPED_TRACE(str_cat("dp ", s.dp, " sp ", s.sp, " levels ", s.levels, " selective ", s.selective, " shards ",
                       shards.describe(), " ", groups.mesh.describe()));
  EXPECT_NEAR(result.global_loss, expected.loss, 1e-5 * std::abs(expected.loss));
  EXPECT_GT(sync.num_buckets(), 1);
  for (const auto& [name, p] : model.parameters()) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(p.grad().defined());
    GSA_EXPECT_CLOSE(p.grad(), expected.grads.at(name), test::kFp32Atol, test::kFp32Rtol);
    p.mutable_grad() = at::Tensor();
  }

  // Answer accuracy of the global batch: answers cut short, half of them the model's own predictions, some
  // spanning the shard cuts; the oracle counts them on the whole rows.
  const at::Tensor mixed_global = test::answer_mix_labels(global_labels, expected.argmax);
  const at::Tensor mixed = mixed_global.narrow(0, first, rows_per_replica).narrow(1, 0, length);
  const SpLossResult scored =
      sp_next_token_loss(model, rows, mixed, shards, attention, s.selective, *groups.sp, *groups.world);
  const auto [correct, answers] = test::answer_tally_oracle(expected.argmax, mixed_global);
  const AnswerTally tally = sp_answer_tally(scored, first, rows_per_replica * s.dp, *groups.world);
  EXPECT_EQ(tally.answers, answers);
  // The sharded forward's argmax may differ from the oracle's at a near-tie (fp32 sums in another order): a
  // miscount of how answers are cut or merged over shards is off by far more than that.
  EXPECT_NEAR(tally.correct, correct, std::max<int64_t>(1, answers / 50));
  EXPECT_GT(correct, 0);
}

TEST(SpModel, SequenceParallelEqualsOneRank) {
  const int64_t world = test::mpi_session().world_size();
  uint32_t seed = 40;
  for (int64_t levels : {1, 2}) {
    for (bool selective : {false, true}) {
      for (bool awkward : {false, true}) check({1, world, levels, selective, awkward}, ++seed);
    }
  }
}

// The work-balanced placement moves the cuts, never the result.
TEST(SpModel, WorkBalancedCutEqualsOneRank) {
  const int64_t world = test::mpi_session().world_size();
  const WorkModel work = work_model_of(test::sp_tiny_model());
  uint32_t seed = 60;
  int moved = 0;  // cases where the work cut differs from the section cut (else this test would add nothing)
  for (int64_t levels : {1, 2}) {
    for (bool selective : {false, true}) {
      ++seed;
      const std::vector<GistLayout> rows = test::sp_random_batch(levels, 2, seed);  // check()'s rows
      moved += shard_by_work(rows, world, work).begin != shard_at_sections(rows, world).begin;
      check({1, world, levels, selective, false, true}, seed);
    }
  }
  if (world > 1) {
    EXPECT_GT(moved, 0) << "the work cut never moved a boundary";
  }
}

TEST(SpModel, DataTimesSequenceParallelEqualsOneRank) {
  const int64_t world = test::mpi_session().world_size();
  if (world % 2 != 0) GTEST_SKIP() << "needs an even world";
  uint32_t seed = 80;
  for (bool selective : {false, true}) check({2, world / 2, 2, selective, true}, ++seed);
}

TEST(SpModel, GradientBucketsStartDuringBackward) {
  const ProcessGroups& groups = test::test_groups(1, test::mpi_session().world_size());
  LlamaModel model = LlamaModel::create(test::sp_tiny_model(), 5, groups.device);
  model.set_requires_grad(true);
  std::vector<GistLayout> rows = test::sp_random_batch(1, 2, 5);
  GradientSync sync(model.parameter_list(), groups.world, /*bucket_bytes=*/4 << 10);
  AttentionOptions attention;
  SpLossResult result = sp_next_token_loss(model, rows, test::sp_next_token_labels(rows),
                                           shard_at_sections(rows, groups.mesh.sp), attention, false, *groups.sp,
                                           *groups.world);
  result.loss.backward();
  // Every bucket's gradients arrived through the hooks, so every all-reduce started before backward returned.
  EXPECT_EQ(sync.started_during_backward(), sync.num_buckets());
  sync.finish();
}

TEST(GradientSync, SumsOverTheWorldAndZeroFillsUnusedParameters) {
  const ProcessGroups& groups = test::test_groups(1, test::mpi_session().world_size());
  const int me = groups.mesh.rank, n = groups.world->size();
  const auto opts = at::TensorOptions().dtype(at::kFloat).device(groups.device);
  at::Tensor used = at::zeros({5}, opts).requires_grad_();
  at::Tensor unused = at::zeros({3}, opts).requires_grad_();  // gets no gradient this step
  at::Tensor also = at::zeros({2, 2}, opts).requires_grad_();
  GradientSync sync({used, unused, also}, groups.world, /*bucket_bytes=*/16);  // one bucket per parameter
  // Rank r contributes (r + 1) to every element: the sums are n (n + 1) / 2, exact in fp32.
  ((used.sum() + also.sum()) * (me + 1)).backward();
  sync.finish();
  const double total = n * (n + 1) / 2.0;
  EXPECT_TRUE(at::equal(used.grad().cpu(), at::full({5}, total)));
  EXPECT_TRUE(at::equal(also.grad().cpu(), at::full({2, 2}, total)));
  ASSERT_TRUE(unused.grad().defined());
  EXPECT_TRUE(at::equal(unused.grad().cpu(), at::zeros({3})));
  EXPECT_EQ(sync.num_buckets(), 3);
  EXPECT_EQ(sync.started_during_backward(), 2);  // the unused parameter's bucket started in finish()
}

}  // namespace
}  // namespace gsa
