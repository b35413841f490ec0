// The folded form of the GSA mask rule (fold_mask_query + folded_mask_allows, what the Hopper forward evaluates a
// key tile with) against the rule itself (gist_mask_allows_class), over every key class, 1-4 levels, 0-3 previous
// chunks, queries past their row's end, padding keys and documents, gists above the key's section, and sinks in
// the top class's tiles: every pair must agree exactly.
#include <gtest/gtest.h>

#include <random>

#include "gsa/kernels/gist_mask.h"

namespace gsa::kernels {
namespace {

TEST(GistMaskFolded, EqualsTheRuleOnEveryClassAndQuery) {
  std::mt19937 rng(20261203);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int64_t allowed = 0, checked = 0;
  for (int levels = 1; levels <= kMaxGistLevels; ++levels) {
    for (int prev = 0; prev <= 3; ++prev) {
      for (int selective = 0; selective <= 1; ++selective) {
        const GistMaskRule rule{levels, prev, selective, 0};
        for (int trial = 0; trial < 4000; ++trial) {
          const int key_class = uniform(kClassSink, levels - 1);
          const MaskQuery q{uniform(-1, 60), uniform(-1, 3), uniform(-1, levels - 1), uniform(0, 12), uniform(0, 12),
                            uniform(0, 3) != 0};
          const FoldedMaskQuery folded = fold_mask_query(key_class, q, rule);
          for (int k = 0; k < 16; ++k) {
            // chunk_up -1 on a top-level key is a sink in the top class's tiles (kSinkChunkUp).
            const MaskKey key{uniform(-1, 60), uniform(-1, 3), uniform(0, 12), uniform(-1, 12)};
            const bool expected = gist_mask_allows_class(key_class, q, key, rule);
            const bool got = folded_mask_allows(key_class, folded, static_cast<int32_t>(key.pos), key.doc,
                                                key.chunk0, key.chunk_up, rule);
            ASSERT_EQ(got, expected) << "class " << key_class << " levels " << levels << " prev " << prev
                                     << " query (pos " << q.pos << ", doc " << q.doc << ", level " << q.level
                                     << ", chunk0 " << q.chunk0 << ", up " << q.chunk_up << ", sees "
                                     << q.sees_gists << ") key (pos " << key.pos << ", doc " << key.doc
                                     << ", chunk0 " << key.chunk0 << ", up " << key.chunk_up << ")";
            allowed += expected;
            ++checked;
          }
        }
      }
    }
  }
  // The draws must exercise both outcomes (a rule that allowed nothing would pass vacuously).
  EXPECT_GT(allowed, checked / 50);
  EXPECT_LT(allowed, checked / 2);
}

}  // namespace
}  // namespace gsa::kernels
