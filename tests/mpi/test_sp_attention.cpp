// Sequence-parallel GSA attention against single-rank gsa_attention on the whole rows: outputs and the
// gradients of q, k and v of every rank's shard (halo, gist-tree all-gather and unfold routing in both
// directions), for 1 and 2 levels, cpt and selective layers, packed documents, cuts at section boundaries and
// in awkward places. Tolerance: fp32, |a - e| <= 2e-5 + 2e-4 |e| (kFp32*; only the summation order differs).
// In bf16 with head dim 64 the owners of routed chunks attend on the selected-attention kernels (their CPU twin
// here): relative error kBf16RelErr against the single-rank reference path.
#include <gtest/gtest.h>

#include "common/tolerance.h"
#include "gsa/parallel/sp_attention.h"
#include "gsa/runtime/attention.h"
#include "gsa/runtime/error.h"
#include "mpi/mpi_test_env.h"
#include "mpi/sp_fixtures.h"

namespace gsa {
namespace {

using test::test_groups;

struct Case {
  int64_t levels;
  bool selective;
  bool awkward;
  bool bf16 = false;  // bf16, head dim 64 (else fp32, head dim 8)
  int64_t sink = 2;   // raw tokens at each document's start; 0: the first chunk starts at position 0
};

void check_case(const Case& c, uint32_t seed) {
  const ProcessGroups& groups = test_groups(1, test::mpi_session().world_size());
  Communicator& sp = *groups.sp;
  const at::Device device = groups.device;
  std::vector<GistLayout> rows = test::sp_random_batch(c.levels, 2, seed, c.sink);
  const int64_t length = padded_length(rows);
  SequenceShards shards = c.awkward ? test::sp_awkward_shards(length, sp.size(), seed + 1)
                                    : shard_at_sections(rows, sp.size());
  AttentionOptions options;
  options.selection.first_selective_layer = 0;
  const int64_t b = 2, hq = 4, hkv = 2, d = c.bf16 ? 64 : 8;
  const at::ScalarType dtype = c.bf16 ? at::kBFloat16 : at::kFloat;
  at::Generator gen = at::detail::createCPUGenerator(seed);
  at::Tensor q = at::randn({b, hq, length, d}, gen, at::kFloat).to(device, dtype).requires_grad_();
  at::Tensor k = at::randn({b, hkv, length, d}, gen, at::kFloat).to(device, dtype).requires_grad_();
  at::Tensor v = at::randn({b, hkv, length, d}, gen, at::kFloat).to(device, dtype).requires_grad_();
  at::Tensor grad_out = at::randn({b, hq, length, d}, gen, at::kFloat).to(device, dtype);
  const double scale = 1.0 / std::sqrt(double(d));

  // Oracle: one rank, whole rows.
  AttentionPlan full = make_attention_plan(row_pointers(rows), 0, -1, options, device);
  at::Tensor expected = gsa_attention(q, k, v, full, c.selective, options.selection, scale);
  expected.backward(grad_out);

  // This rank's shard.
  SpForwardPlan plan = make_sp_forward_plan(rows, shards, options, sp, device);
  const int64_t begin = plan.local_begin(), size = plan.local_size();
  auto local = [&](const at::Tensor& x) { return x.detach().narrow(2, begin, size).clone().requires_grad_(); };
  at::Tensor q_l = local(q), k_l = local(k), v_l = local(v);
  SequenceParallelAttention attention(plan, options.selection, sp);
  at::Tensor out = attention.attend(0, c.selective, q_l, k_l, v_l, scale);
  out.backward(grad_out.narrow(2, begin, size));

  SCOPED_TRACE(str_cat("levels ", c.levels, " sink ", c.sink, " selective ", c.selective, " shards ", shards.describe(), " rank ",
                       sp.rank(), " selective queries ", plan.plan.selection.count));
  if (c.bf16) {
    EXPECT_TRUE(test::relative_error_below(out, expected.narrow(2, begin, size), test::kBf16RelErr)) << "out";
    EXPECT_TRUE(test::relative_error_below(q_l.grad(), q.grad().narrow(2, begin, size), test::kBf16RelErr)) << "dq";
    EXPECT_TRUE(test::relative_error_below(k_l.grad(), k.grad().narrow(2, begin, size), test::kBf16RelErr)) << "dk";
    EXPECT_TRUE(test::relative_error_below(v_l.grad(), v.grad().narrow(2, begin, size), test::kBf16RelErr)) << "dv";
    return;
  }
  GSA_EXPECT_CLOSE(out, expected.narrow(2, begin, size), test::kFp32Atol, test::kFp32Rtol);
  GSA_EXPECT_CLOSE(q_l.grad(), q.grad().narrow(2, begin, size), test::kFp32Atol, test::kFp32Rtol);
  GSA_EXPECT_CLOSE(k_l.grad(), k.grad().narrow(2, begin, size), test::kFp32Atol, test::kFp32Rtol);
  GSA_EXPECT_CLOSE(v_l.grad(), v.grad().narrow(2, begin, size), test::kFp32Atol, test::kFp32Rtol);
}

TEST(SpAttention, MatchesSingleRankForwardAndBackward) {
  uint32_t seed = 100;
  for (int64_t levels : {1, 2}) {
    for (bool selective : {false, true}) {
      for (bool awkward : {false, true}) check_case({levels, selective, awkward}, ++seed);
    }
  }
}

TEST(SpAttention, NoSinkRoutesTheChunkAtPositionZero) {
  // With no sink the first chunk starts at position 0, and a routed list whose entries for another owner are
  // masked to -1 holds a hole right before position 0 (-1 == 0 - 1 must not read as "consecutive").
  uint32_t seed = 300;
  for (int64_t levels : {1, 2}) {
    for (bool awkward : {false, true}) check_case({levels, /*selective=*/true, awkward, /*bf16=*/false, /*sink=*/0}, ++seed);
  }
}

TEST(SpAttention, Bf16RoutedChunksOnTheKernelsMatchSingleRank) {
  uint32_t seed = 200;
  for (int64_t levels : {1, 2}) {
    for (bool awkward : {false, true}) check_case({levels, /*selective=*/true, awkward, /*bf16=*/true}, ++seed);
  }
}

TEST(SpAttention, SelectiveQueriesReachRemoteChunks) {
  // The routed path must actually carry work: with the suffix on the last rank, its selected chunks live on
  // earlier ranks.
  const ProcessGroups& groups = test_groups(1, test::mpi_session().world_size());
  Communicator& sp = *groups.sp;
  std::vector<GistLayout> rows = test::sp_random_batch(1, 1, 7);
  SequenceShards shards = shard_at_sections(rows, sp.size());
  AttentionOptions options;
  options.selection.first_selective_layer = 0;
  SpForwardPlan plan = make_sp_forward_plan(rows, shards, options, sp, groups.device);
  const int64_t length = shards.length();
  at::Generator gen = at::detail::createCPUGenerator(3);
  auto local = [&](int64_t heads) {
    return at::randn({1, heads, length, 8}, gen, at::kFloat).narrow(2, plan.local_begin(), plan.local_size())
        .to(groups.device);
  };
  at::Tensor q = local(4), k = local(2), v = local(2);
  std::vector<SpLayerTraffic> traffic;
  SequenceParallelAttention attention(plan, options.selection, sp);
  attention.count_traffic(&traffic);
  attention.attend(0, true, q, k, v, 0.35);
  const int64_t items = sp.all_reduce_int(traffic[0].routing.items_sent, ReduceOp::kSum);
  EXPECT_TRUE(plan.any_selective);
  if (sp.size() > 1) {
    EXPECT_GT(items, 0) << "no selective query was routed to another rank";
  }
}

}  // namespace
}  // namespace gsa
