// The single-process trainer is dp 1 x sp 1 of the distributed one (parallel/local_communicator.h): the group of
// one's collectives, and the sequence-parallel loss, gradients and answer accuracy over a LocalCommunicator against
// the plain runtime forward over whole rows (the oracle of the MPI tests, tests/mpi/sp_fixtures.h).
// Tolerance: fp32 through two layers, as in test_sp_model: loss 1e-5 relative; gradients kFp32Atol/kFp32Rtol.
#include <gtest/gtest.h>

#include <algorithm>

#include "common/tolerance.h"
#include "gsa/parallel/gradient_sync.h"
#include "gsa/parallel/local_communicator.h"
#include "gsa/parallel/sp_model.h"
#include "gsa/runtime/error.h"
#include "mpi/sp_fixtures.h"

namespace gsa {
namespace {

// The loss and every parameter's gradient against the single-rank oracle (the tolerances above).
void expect_matches_oracle(const LlamaModel& model, double loss, const test::SingleRankResult& expected) {
  EXPECT_NEAR(loss, expected.loss, 1e-5 * std::abs(expected.loss));
  for (const auto& [name, p] : model.parameters()) {
    SCOPED_TRACE(name);
    GSA_EXPECT_CLOSE(p.grad(), expected.grads.at(name), test::kFp32Atol, test::kFp32Rtol);
  }
}

TEST(LocalCommunicator, GroupOfOneCollectives) {
  LocalCommunicator comm(at::kCPU);
  EXPECT_EQ(comm.rank(), 0);
  EXPECT_EQ(comm.size(), 1);
  at::Tensor x = at::arange(6, at::kFloat);
  comm.all_reduce(x);
  EXPECT_TRUE(x.equal(at::arange(6, at::kFloat)));
  at::Tensor gathered = at::zeros({6});
  comm.all_gather(x, gathered);
  EXPECT_TRUE(gathered.equal(x));
  at::Tensor scattered = at::zeros({6});
  comm.reduce_scatter(x, scattered);
  EXPECT_TRUE(scattered.equal(x));
  at::Tensor rows = at::arange(8, at::kFloat).reshape({4, 2}), out = at::zeros({3, 2});
  comm.all_to_all_v(rows.narrow(0, 1, 3).contiguous(), {3}, out, {3});
  EXPECT_TRUE(out.equal(rows.narrow(0, 1, 3)));
  at::Tensor a = at::zeros({2}), b = at::zeros({3});
  comm.send_recv({{0, at::ones({2})}, {0, at::full({3}, 2.0)}}, {{0, a}, {0, b}});
  EXPECT_TRUE(a.equal(at::ones({2})));
  EXPECT_TRUE(b.equal(at::full({3}, 2.0)));
  EXPECT_EQ(comm.all_gather_ints({4, 5}), (std::vector<int64_t>{4, 5}));
  EXPECT_THROW(comm.all_to_all_v(rows, {4}, out, {3}), Error);       // 4 rows sent to itself, 3 received
  EXPECT_THROW(comm.send_recv({{1, at::ones({2})}}, {{0, a}}), Error);  // peer 1 in a group of one
  EXPECT_THROW(comm.all_reduce(at::ones({2, 3}).t()), Error);  // not contiguous
}

TEST(SingleProcessMesh, SequenceParallelPathEqualsThePlainForward) {
  const ProcessGroups groups = make_single_process_groups(at::kCPU);
  EXPECT_EQ(groups.mesh.world_size, 1);
  for (const int64_t levels : {1, 2}) {
    for (const bool selective : {false, true}) {
      SCOPED_TRACE(str_cat("levels ", levels, " selective ", selective));
      LlamaModel model = LlamaModel::create(test::sp_tiny_model(), 11, at::kCPU);
      model.set_requires_grad(true);
      AttentionOptions attention;
      const std::vector<GistLayout> rows = test::sp_random_batch(levels, 3, 5);
      const at::Tensor labels = test::sp_next_token_labels(rows);
      const test::SingleRankResult expected = test::single_rank_loss(model, rows, labels, attention, selective);

      GradientSync sync(model.parameter_list(), groups.world);
      const SpLossResult result = sp_next_token_loss(model, rows, labels, shard_at_sections(rows, 1), attention,
                                                     selective, *groups.sp, *groups.world);
      result.loss.backward();
      sync.finish();
      expect_matches_oracle(model, result.global_loss, expected);
      // Answer accuracy against the oracle's argmax, with labels cut into many short answers, half of them the
      // model's own predictions.
      const at::Tensor mixed = test::answer_mix_labels(labels, expected.argmax);
      const SpLossResult scored = sp_next_token_loss(model, rows, mixed, shard_at_sections(rows, 1), attention,
                                                     selective, *groups.sp, *groups.world);
      const auto [correct, answers] = test::answer_tally_oracle(expected.argmax, mixed);
      const AnswerTally tally = sp_answer_tally(scored, 0, 3, *groups.world);
      EXPECT_EQ(tally.answers, answers);
      // The sharded forward's argmax may differ from the oracle's at a near-tie (fp32 sums in another order): a
  // miscount of how answers are cut or merged over shards is off by far more than that.
  EXPECT_NEAR(tally.correct, correct, std::max<int64_t>(1, answers / 50));
      EXPECT_GT(correct, 0);
      EXPECT_LT(correct, answers);
    }
  }
}

// The LM head applied a few positions at a time (loss_chunk 7) with tied embeddings: every parameter gets one
// gradient per backward (GradientSync refuses two: a head checkpointed per chunk gave the tied embedding one
// from each chunk and one from the lookup), and the loss and gradients equal the plain forward's.
TEST(SingleProcessMesh, TiedEmbeddingsAndSeveralLossChunksGiveOneGradientEach) {
  const ProcessGroups groups = make_single_process_groups(at::kCPU);
  ModelOptions options = test::sp_tiny_model();
  options.tie_embeddings = true;
  LlamaModel model = LlamaModel::create(options, 13, at::kCPU);
  model.set_requires_grad(true);
  AttentionOptions attention;
  const std::vector<GistLayout> rows = test::sp_random_batch(1, 2, 10);
  const at::Tensor labels = test::sp_next_token_labels(rows);
  const test::SingleRankResult expected = test::single_rank_loss(model, rows, labels, attention, /*selective=*/true);
  GradientSync sync(model.parameter_list(), groups.world);
  const SpLossResult result = sp_next_token_loss(model, rows, labels, shard_at_sections(rows, 1), attention,
                                                 /*selective=*/true, *groups.sp, *groups.world,
                                                 /*checkpoint_layers=*/true, /*loss_chunk=*/7);
  result.loss.backward();
  sync.finish();
  expect_matches_oracle(model, result.global_loss, expected);
}

// Gradient accumulation (GradientSync::set_sync, the trainer's weighting): two micro-batches, each loss weighted by
// its share of the labelled tokens, give the gradient of the whole batch at once.
TEST(SingleProcessMesh, AccumulatedMicroBatchesEqualTheWholeBatch) {
  const ProcessGroups groups = make_single_process_groups(at::kCPU);
  LlamaModel model = LlamaModel::create(test::sp_tiny_model(), 12, at::kCPU);
  model.set_requires_grad(true);
  AttentionOptions attention;
  const std::vector<GistLayout> rows = test::sp_random_batch(2, 4, 9);
  const test::SingleRankResult expected =
      test::single_rank_loss(model, rows, test::sp_next_token_labels(rows), attention, /*selective=*/true);

  GradientSync sync(model.parameter_list(), groups.world);
  const std::vector<GistLayout> micro[2] = {{rows[0], rows[1]}, {rows[2], rows[3]}};
  int64_t total = 0;
  for (const auto& m : micro) total += (test::sp_next_token_labels(m) != -100).sum().item<int64_t>();
  double loss = 0;
  for (int m = 0; m < 2; ++m) {
    const SpLossResult result =
        sp_next_token_loss(model, micro[m], test::sp_next_token_labels(micro[m]), shard_at_sections(micro[m], 1),
                           attention, /*selective=*/true, *groups.sp, *groups.world);
    const double weight = static_cast<double>(result.labelled) / static_cast<double>(total);
    sync.set_sync(m == 1);
    (result.loss * weight).backward();
    loss += result.global_loss * weight;
  }
  sync.finish();
  expect_matches_oracle(model, loss, expected);
  EXPECT_THROW(
      {
        sync.set_sync(false);
        sync.finish();
      },
      Error);
}

// Activation checkpointing (runtime/activation_checkpoint.h through LlamaModel::forward): the layers recomputed in
// backward give the plain forward's loss and gradients (the same ops on the same inputs: equal to the last bit).
TEST(SingleProcessMesh, CheckpointedLayersGiveThePlainGradients) {
  const ProcessGroups groups = make_single_process_groups(at::kCPU);
  LlamaModel model = LlamaModel::create(test::sp_tiny_model(), 13, at::kCPU);
  model.set_requires_grad(true);
  AttentionOptions attention;
  const std::vector<GistLayout> rows = test::sp_random_batch(2, 3, 4);
  const at::Tensor labels = test::sp_next_token_labels(rows);
  std::map<std::string, at::Tensor> grads[2];
  double losses[2] = {0, 0};
  for (const bool checkpoint : {false, true}) {
    GradientSync sync(model.parameter_list(), groups.world);
    SpLossResult result = sp_next_token_loss(model, rows, labels, shard_at_sections(rows, 1), attention,
                                             /*selective=*/true, *groups.sp, *groups.world, checkpoint);
    EXPECT_EQ(result.recompute_state != nullptr, checkpoint);
    result.loss.backward();
    sync.finish();
    losses[checkpoint] = result.global_loss;
    for (const auto& [name, p] : model.parameters()) {
      grads[checkpoint][name] = p.grad().clone();
      p.mutable_grad() = at::Tensor();
    }
  }
  EXPECT_EQ(losses[0], losses[1]);
  for (const auto& [name, g] : grads[0]) EXPECT_TRUE(at::equal(g, grads[1].at(name))) << name;
}

}  // namespace
}  // namespace gsa
