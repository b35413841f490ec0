// The kernels' tile plan (runtime/tile_plan.h) against the mask rule on each token's own metadata
// (gist_mask_allows over pack_token_meta): for random packed layouts (1-3 levels, 0-3 sinks, 0-2 previous chunks,
// suffix tokens) and every layer kind (plain, selective, selective keeping the gists), every query of every forward
// block must see, through its block's list of key tiles with each tile's class and per-key metadata
// (gist_mask_allows_class and its folded form, what the CUDA kernels evaluate), exactly the keys the rule allows,
// each once; and a tile the block sees whole (kFullTile, as the kernels honour it) must hold only allowed keys.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "gsa/kernels/gist_mask.h"
#include "gsa/kernels/sparse_attention.h"
#include "gsa/runtime/gist_layout.h"
#include "gsa/runtime/mask_predicate.h"
#include "gsa/runtime/tile_plan.h"

namespace gsa {
namespace {

using kernels::GistMaskRule;
using kernels::kTileKeys;

std::vector<GistLayout> random_rows(const GistOptions& options, std::mt19937& rng) {
  std::vector<GistLayout> rows;
  for (int b = 0; b < 2; ++b) {
    std::vector<Document> docs;
    for (int d = 0, n = 1 + rng() % 3; d < n; ++d) {
      Document doc;
      for (int i = 0, len = rng() % 300; i < len; ++i) doc.context.push_back(rng() % 256);
      for (int i = 0, len = rng() % 6; i < len; ++i) doc.suffix.push_back(rng() % 256);
      docs.push_back(doc);
    }
    rows.push_back(build_layout(docs, options));
  }
  return rows;
}

// Checks every query of `plan` (built for `rows` with group 1) under `rule`; adds the allowed pairs to `pairs`.
void check_plan(const TilePlan& plan, const std::vector<GistLayout>& rows, const GistMaskRule& rule,
                int64_t& pairs) {
  auto host = [](const at::Tensor& t) { return t.cpu().contiguous(); };  // int32
  const at::Tensor offsets = host(plan.forward_offsets), list = host(plan.forward_key_tiles);
  const at::Tensor block_row = host(plan.query_block_row), block_start = host(plan.query_block_start);
  const at::Tensor block_flags = host(plan.query_block_flags), tile_class = host(plan.key_tile_class);
  const at::Tensor tile_pos = host(plan.key_tile_positions), tile_doc = host(plan.key_tile_doc);
  const at::Tensor tile_chunk0 = host(plan.key_tile_chunk0), tile_up = host(plan.key_tile_chunk_up);
  const int32_t* off = offsets.data_ptr<int32_t>();
  const int32_t* entries = list.data_ptr<int32_t>();
  for (int64_t block = 0; block + 1 < offsets.numel(); ++block) {
    const GistLayout& r = rows[block_row.data_ptr<int32_t>()[block]];
    const int64_t start = block_start.data_ptr<int32_t>()[block];
    const bool suffix_block = block_flags.data_ptr<int32_t>()[block] & kernels::kSuffixFlag;
    for (int64_t q = start; q < std::min<int64_t>(start + kernels::kBlockRows, r.size()); ++q) {
      int32_t q_meta[kernels::kTokenMetaInts];
      pack_token_meta(r, q, q_meta);
      std::vector<int> seen(r.size(), 0);
      for (int32_t i = off[block]; i < off[block + 1]; ++i) {
        const int32_t kt = entries[i] & kernels::kTileIdMask;
        const int32_t key_class = tile_class.data_ptr<int32_t>()[kt];
        // As the kernels take a whole tile (sparse_attention_query_pass.cu, query_block_sm90.cuh).
        const bool whole = (entries[i] & kernels::kFullTile) &&
                           !(key_class >= 0 && suffix_block && rule.selective && !rule.keep_unselected_gists);
        const int up = key_class >= 0 && key_class + 1 < rule.levels ? key_class + 1 : 0;
        const kernels::MaskQuery mq{q, q_meta[kernels::kMetaDoc], q_meta[kernels::kMetaLevel],
                                    q_meta[kernels::kMetaChunk0], q_meta[kernels::kMetaChunk0 + up],
                                    kernels::query_sees_gists(q_meta, rule)};
        const kernels::FoldedMaskQuery folded = kernels::fold_mask_query(key_class, mq, rule);
        for (int c = 0; c < kTileKeys; ++c) {
          const int64_t at = int64_t(kt) * kTileKeys + c;
          const int32_t pos = tile_pos.data_ptr<int32_t>()[at];
          const kernels::MaskKey key{pos, tile_doc.data_ptr<int32_t>()[at], tile_chunk0.data_ptr<int32_t>()[at],
                                     tile_up.data_ptr<int32_t>()[at]};
          bool expected = false;
          if (pos >= 0) {
            int32_t k_meta[kernels::kTokenMetaInts];
            pack_token_meta(r, pos, k_meta);
            expected = kernels::gist_mask_allows(q, q_meta, pos, k_meta, rule);
          }
          const bool by_class = kernels::gist_mask_allows_class(key_class, mq, key, rule);
          const bool by_fold = kernels::folded_mask_allows(key_class, folded, pos, key.doc, key.chunk0,
                                                           key.chunk_up, rule);
          ASSERT_EQ(by_class, expected) << "query " << q << " key " << pos << " class " << key_class;
          ASSERT_EQ(by_fold, expected) << "query " << q << " key " << pos << " class " << key_class;
          if (whole) {
            ASSERT_TRUE(expected) << "a whole tile holds a masked key: query " << q << " key " << pos;
          }
          if (expected) ++seen[pos];
        }
      }
      for (int64_t k = 0; k < r.size(); ++k) {
        int32_t k_meta[kernels::kTokenMetaInts];
        pack_token_meta(r, k, k_meta);
        const bool allowed = kernels::gist_mask_allows(q, q_meta, k, k_meta, rule);
        ASSERT_EQ(seen[k], allowed ? 1 : 0) << "query " << q << " key " << k << ": visits of an allowed key";
        pairs += allowed;
      }
    }
  }
}

TEST(TilePlan, BlocksSeeExactlyTheAllowedKeysThroughTheirTilesMetadata) {
  std::mt19937 rng(20261204);
  int64_t pairs = 0;
  for (int levels = 1; levels <= 3; ++levels) {
    for (int sink = 0; sink <= 3; sink += 3) {
      GistOptions options;
      options.levels = levels;
      options.chunk = 2 + rng() % 6;
      options.fanout = 2 + rng() % 3;
      options.sink = sink;
      options.prev_chunks = rng() % 3;
      const std::vector<GistLayout> rows = random_rows(options, rng);
      const TilePlan plan = make_tile_plan({&rows[0], &rows[1]}, 0, -1, 1, at::kCPU, 64, false);
      for (int kind = 0; kind < 3; ++kind) {  // plain, selective, selective keeping the gists
        const GistMaskRule rule{levels, static_cast<int32_t>(options.prev_chunks), kind > 0, kind == 2};
        check_plan(plan, rows, rule, pairs);
        if (HasFatalFailure()) return;
      }
    }
  }
  EXPECT_GT(pairs, 10000);  // the layouts were not empty
}

}  // namespace
}  // namespace gsa
