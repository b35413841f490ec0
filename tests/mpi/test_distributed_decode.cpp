// Distributed decode against single-device decode (Generator): prefill logits, every step's logits, and the
// greedy tokens, for 1 and 2 levels, with and without selection, shards at sections and in awkward places.
// The sp group's KV cache is never gathered: each rank holds only its shard (plus the tail's new tokens).
// Tolerance: fp32 logits |a - e| <= 1e-5 + 1e-4 |e| (summation order only); tokens equal.
#include <gtest/gtest.h>

#include "common/tolerance.h"
#include "gsa/parallel/distributed_decode.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/generation.h"
#include "mpi/mpi_test_env.h"
#include "mpi/sp_fixtures.h"

namespace gsa {
namespace {

GistLayout prompt(int64_t levels, uint32_t seed) {
  std::mt19937 rng(seed);
  Document doc;
  for (int64_t i = 0; i < 90; ++i) doc.context.push_back(rng() % 256);
  for (int64_t i = 0; i < 4; ++i) doc.suffix.push_back(rng() % 256);
  return build_layout({doc}, test::sp_gist_options(levels));
}

TEST(DistributedDecode, EqualsSingleRankDecode) {
  const ProcessGroups& groups = test::test_groups(1, test::mpi_session().world_size());
  Communicator& sp = *groups.sp;
  const int64_t new_tokens = 10;
  uint32_t seed = 20;
  for (int64_t levels : {1, 2}) {
    for (bool selective : {false, true}) {
      for (bool awkward : {false, true}) {
        ++seed;
        LlamaModel model = LlamaModel::create(test::sp_tiny_model(), seed, groups.device);
        AttentionOptions attention;
        attention.selection.enabled = selective;
        const GistLayout layout = prompt(levels, seed);
        const int64_t capacity = layout.size() + new_tokens;
        SequenceShards shards = awkward ? test::sp_awkward_shards(layout.size(), sp.size(), seed)
                                        : shard_at_sections({layout}, sp.size());
        SCOPED_TRACE(str_cat("levels ", levels, " selective ", selective, " shards ", shards.describe()));

        Generator single(model, attention, layout, capacity);
        DistributedGenerator distributed(model, attention, layout, shards, capacity, sp);
        at::Tensor expected = single.prefill();
        at::Tensor actual = distributed.prefill();
        GSA_EXPECT_CLOSE(actual, expected, 1e-5, 1e-4);
        EXPECT_EQ(distributed.held_positions(), shards.shard_size(sp.rank()));
        for (int64_t i = 0; i < new_tokens - 1; ++i) {
          const int64_t token = expected.argmax().item<int64_t>();
          ASSERT_EQ(actual.argmax().item<int64_t>(), token) << "step " << i;
          expected = single.step(token);
          actual = distributed.step(token);
          GSA_EXPECT_CLOSE(actual, expected, 1e-5, 1e-4);
        }
        const int64_t tail_extra = sp.rank() == sp.size() - 1 ? new_tokens - 1 : 0;
        EXPECT_EQ(distributed.held_positions(), shards.shard_size(sp.rank()) + tail_extra);
      }
    }
  }
}

TEST(DistributedDecode, GenerateFollowsRankZeroSampling) {
  const ProcessGroups& groups = test::test_groups(1, test::mpi_session().world_size());
  LlamaModel model = LlamaModel::create(test::sp_tiny_model(), 3, groups.device);
  AttentionOptions attention;
  const GistLayout layout = prompt(2, 3);
  SamplingOptions sampling;
  sampling.temperature = 0.8;
  sampling.seed = 5;
  sampling.max_new_tokens = 8;
  Generator single(model, attention, layout, layout.size() + 8);
  DistributedGenerator distributed(model, attention, layout, shard_at_sections({layout}, groups.mesh.sp),
                                   layout.size() + 8, *groups.sp);
  // Same seed, same logits up to rounding: the same samples (rank 0 samples and broadcasts to the others).
  EXPECT_EQ(distributed.generate(sampling), single.generate(sampling));
}

}  // namespace
}  // namespace gsa
