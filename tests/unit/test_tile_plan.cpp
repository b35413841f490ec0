// The kernels' tile plan (runtime/tile_plan.h) against the mask rule on each token's own metadata
// (gist_mask_allows over pack_token_meta), for random packed layouts (1-3 levels, 0 or 3 sinks, 0-2 previous chunks,
// suffix tokens) and every layer kind (plain, selective, selective keeping the gists). Through the plan's lists --
// the forward's key tiles per query block, and the backward's query tiles per key-tile work item -- every query must
// see exactly the keys the rule allows, each once, when each tile's keys are judged by the tile's class and per-key
// metadata (gist_mask_allows_class and its folded form: what the CUDA kernels evaluate); and a tile the list gives
// whole (kFullTile, as the kernels honour it) must hold only allowed keys. The CPU twin judges keys by their token
// metadata, so only this test checks the plan's key metadata on the CPU.
// Also: the paired backward lists (the Hopper key pass's), the query tiles' lists and the backward entries' stored-dS
// slots into them, the backward items sized by the plan (backward_item_tiles), and their order.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "common/random_layouts.h"
#include "gsa/kernels/gist_mask.h"
#include "gsa/kernels/sparse_attention.h"
#include "gsa/runtime/gist_layout.h"
#include "gsa/runtime/mask_predicate.h"
#include "gsa/runtime/tile_plan.h"

namespace gsa {
namespace {

using kernels::GistMaskRule;
using kernels::kTileKeys;

const int32_t* ints(const at::Tensor& t) { return t.data_ptr<int32_t>(); }

// One layout batch's plan under one rule, and how often each (query, key) pair was seen through it.
struct PlanCheck {
  const TilePlan& plan;  // built on the CPU
  const std::vector<GistLayout>& rows;
  GistMaskRule rule;
  std::vector<std::vector<int>> seen;  // [row][q * T + k]
  // The plan's key tiles as the kernels read them: class [Kt], and per key [Kt * kTileKeys] the MaskKey fields.
  const int32_t *tile_class, *key_pos, *key_doc, *key_chunk0, *key_chunk_up;

  PlanCheck(const TilePlan& p, const std::vector<GistLayout>& r, const GistMaskRule& g)
      : plan(p), rows(r), rule(g), tile_class(ints(p.key_tile_class)), key_pos(ints(p.key_tile_positions)),
        key_doc(ints(p.key_tile_doc)), key_chunk0(ints(p.key_tile_chunk0)), key_chunk_up(ints(p.key_tile_chunk_up)) {
    for (const GistLayout& row : rows) seen.emplace_back(row.size() * row.size(), 0);
  }

  // Query q of row b against key tile kt, the pair's list entry carrying `whole` (kFullTile) for a run whose
  // queries carry suffix_run (kSuffixFlag): each key judged by the tile's class and metadata against the rule.
  void pair(int b, int64_t q, int32_t kt, bool whole, bool suffix_run) {
    const GistLayout& r = rows[b];
    int32_t q_meta[kernels::kTokenMetaInts];
    pack_token_meta(r, q, q_meta);
    const int32_t key_class = tile_class[kt];
    // As the kernels take a listed tile whole (tile_taken_whole, gist_mask.h).
    whole = kernels::tile_taken_whole(whole, key_class, suffix_run ? kernels::kSuffixFlag : 0, rule);
    const kernels::MaskQuery mq = kernels::mask_query_of(q, q_meta, key_class, rule);
    const kernels::FoldedMaskQuery folded = kernels::fold_mask_query(key_class, mq, rule);
    for (int c = 0; c < kTileKeys; ++c) {
      const int64_t at = int64_t(kt) * kTileKeys + c;
      const int32_t pos = key_pos[at];
      const kernels::MaskKey key{pos, key_doc[at], key_chunk0[at], key_chunk_up[at]};
      bool expected = false;
      if (pos >= 0) {
        int32_t k_meta[kernels::kTokenMetaInts];
        pack_token_meta(r, pos, k_meta);
        expected = kernels::gist_mask_allows(q, q_meta, pos, k_meta, rule);
      }
      const bool by_class = kernels::gist_mask_allows_class(key_class, mq, key, rule);
      const bool by_fold = kernels::folded_mask_allows(key_class, folded, pos, key.doc, key.chunk0, key.chunk_up, rule);
      ASSERT_EQ(by_class, expected) << "row " << b << " query " << q << " key " << pos << " class " << key_class;
      ASSERT_EQ(by_fold, expected) << "row " << b << " query " << q << " key " << pos << " class " << key_class;
      if (whole) {
        ASSERT_TRUE(expected) << "a whole tile holds a masked key: row " << b << " query " << q << " key " << pos;
      }
      if (expected) ++seen[b][q * r.size() + pos];
    }
  }

  // Queries start .. start + run_rows - 1 of row b (those inside the row) against key tile kt, each as pair().
  void run(int b, int64_t start, int64_t run_rows, int32_t kt, bool whole, bool suffix_run) {
    for (int64_t q = start; q < std::min<int64_t>(start + run_rows, rows[b].size()); ++q) {
      pair(b, q, kt, whole, suffix_run);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }

  // Every allowed pair seen once, no other; returns the allowed pairs.
  int64_t finish() {
    int64_t allowed_pairs = 0;
    for (size_t b = 0; b < rows.size(); ++b) {
      const GistLayout& r = rows[b];
      for (int64_t q = 0; q < r.size(); ++q) {
        int32_t q_meta[kernels::kTokenMetaInts], k_meta[kernels::kTokenMetaInts];
        pack_token_meta(r, q, q_meta);
        for (int64_t k = 0; k < r.size(); ++k) {
          pack_token_meta(r, k, k_meta);
          const bool allowed = kernels::gist_mask_allows(q, q_meta, k, k_meta, rule);
          const int visits = seen[b][q * r.size() + k];
          EXPECT_EQ(visits, allowed ? 1 : 0) << "row " << b << " query " << q << " key " << k;
          if (visits != (allowed ? 1 : 0)) return allowed_pairs;
          allowed_pairs += allowed;
        }
      }
    }
    return allowed_pairs;
  }
};

// Runs `check(plan, rows, rule)` over the layouts and rules of the file's header; returns the allowed pairs seen.
template <typename Check>
int64_t over_layouts(uint32_t seed, Check check) {
  std::mt19937 rng(seed);
  int64_t pairs = 0;
  for (int levels = 1; levels <= 3; ++levels) {
    for (int sink = 0; sink <= 3; sink += 3) {
      GistOptions options;
      options.levels = levels;
      options.chunk = 2 + rng() % 6;
      options.fanout = 2 + rng() % 3;
      options.sink = sink;
      options.prev_chunks = rng() % 3;
      const std::vector<GistLayout> rows = test::random_packed_rows(options, 299, rng);
      // Backward items of at most 2 query tiles: a key tile's list is cut into several.
      const TilePlan plan = make_tile_plan({&rows[0], &rows[1]}, 0, -1, 1, at::kCPU, 2);
      for (int kind = 0; kind < 3; ++kind) {  // plain, selective, selective keeping the gists
        PlanCheck pc(plan, rows, GistMaskRule{levels, static_cast<int32_t>(options.prev_chunks), kind > 0, kind == 2});
        check(pc);
        if (::testing::Test::HasFailure()) return pairs;
        pairs += pc.finish();
      }
    }
  }
  return pairs;
}

TEST(TilePlan, ForwardBlocksSeeExactlyTheAllowedKeysThroughTheirTilesMetadata) {
  const int64_t pairs = over_layouts(20261204, [](PlanCheck& pc) {
    const TilePlan& p = pc.plan;
    const int32_t *offsets = ints(p.forward_offsets), *list = ints(p.forward_key_tiles);
    for (int64_t block = 0; block + 1 < p.forward_offsets.numel(); ++block) {
      const int b = ints(p.query_block_row)[block];
      const int64_t start = ints(p.query_block_start)[block];
      const bool suffix_run = ints(p.query_block_flags)[block] & kernels::kSuffixFlag;
      for (int32_t i = offsets[block]; i < offsets[block + 1]; ++i) {
        const int32_t entry = list[i];
        pc.run(b, start, kernels::kBlockRows, entry & kernels::kTileIdMask, entry & kernels::kFullTile, suffix_run);
        if (::testing::Test::HasFatalFailure()) return;
      }
    }
  });
  EXPECT_GT(pairs, 10000);  // the layouts were not empty
}

// Every entry of a backward list through pc.run, tile by tile as the key passes read it: the per-tile list (an item's
// key tile, kFullTile) or the paired one (two key tiles an item, kt and kt + 1 of one row, their lists merged; an
// entry's kPairVisit / kPairFull bits per tile).
void run_backward_list(PlanCheck& pc, const BackwardList& l, bool paired) {
  const TilePlan& p = pc.plan;
  const int tiles_per_item = paired ? 2 : 1;
  const int32_t id_mask = paired ? kernels::kPairTileMask : kernels::kTileIdMask;
  const int32_t *offsets = ints(l.offsets), *list = ints(l.entries);
  const int32_t *tiles = ints(l.key_tiles), *key_row = ints(p.key_tile_row);
  if (paired) ASSERT_EQ(l.key_tiles.numel(), 2 * l.shared.numel());
  for (int64_t item = 0; item + 1 < l.offsets.numel(); ++item) {
    const int32_t kt = tiles[tiles_per_item * item];
    const int b = key_row[kt];
    if (paired && tiles[2 * item + 1] >= 0) {
      ASSERT_EQ(tiles[2 * item + 1], kt + 1) << "item " << item;
      ASSERT_EQ(key_row[kt + 1], b) << "item " << item << " pairs key tiles of two rows";
    }
    for (int32_t i = offsets[item]; i < offsets[item + 1]; ++i) {
      const int32_t entry = list[i], qt = entry & id_mask;
      const int64_t start = ints(l.query_start)[i];
      ASSERT_EQ(start, ints(p.query_tile_start)[qt]);
      ASSERT_EQ(b, ints(p.query_tile_row)[qt]);
      if (paired) ASSERT_NE(entry & (3 * kernels::kPairVisit), 0) << "an entry no tile of its pair sees";
      const bool suffix_run = ints(l.query_flags)[i] & kernels::kSuffixFlag;
      for (int w = 0; w < tiles_per_item; ++w) {
        const bool visits = !paired || (entry & (kernels::kPairVisit << w));
        const bool whole = entry & (paired ? kernels::kPairFull << w : kernels::kFullTile);
        if (!visits) {
          ASSERT_FALSE(whole) << "whole but not visited";
          continue;
        }
        if (paired) ASSERT_GE(tiles[2 * item + w], 0) << "visits a pair's missing tile";
        pc.run(b, start, kernels::kTileRows, tiles[tiles_per_item * item + w], whole, suffix_run);
        if (::testing::Test::HasFatalFailure()) return;
      }
    }
  }
}

TEST(TilePlan, BackwardItemsSeeExactlyTheAllowedQueriesThroughTheirTilesMetadata) {
  const int64_t pairs = over_layouts(20261205, [](PlanCheck& pc) { run_backward_list(pc, pc.plan.backward, false); });
  EXPECT_GT(pairs, 10000);
}

// The paired lists (the Hopper key pass's items), entry by entry and tile by tile as the kernel reads them: again
// every allowed pair exactly once.
TEST(TilePlan, BackwardPairItemsSeeExactlyTheAllowedQueriesThroughTheirTilesMetadata) {
  const int64_t pairs =
      over_layouts(20261206, [](PlanCheck& pc) { run_backward_list(pc, pc.plan.backward_pairs, true); });
  EXPECT_GT(pairs, 10000);
}

// The query tiles' own lists (the stored-dS dq pass walks them: the backward lists' transpose): every allowed pair
// exactly once, as the forward's blocks.
TEST(TilePlan, QueryTileListsSeeExactlyTheAllowedKeysThroughTheirTilesMetadata) {
  const int64_t pairs = over_layouts(20261207, [](PlanCheck& pc) {
    const TilePlan& p = pc.plan;
    const int32_t *offsets = ints(p.query_tile_offsets), *list = ints(p.query_tile_key_tiles);
    ASSERT_EQ(p.query_tile_offsets.numel(), p.query_tile_row.numel() + 1);
    ASSERT_EQ(offsets[p.query_tile_row.numel()], p.query_tile_key_tiles.numel());
    for (int64_t qt = 0; qt < p.query_tile_row.numel(); ++qt) {
      const bool suffix_run = ints(p.query_tile_flags)[qt] & kernels::kSuffixFlag;
      for (int32_t i = offsets[qt]; i < offsets[qt + 1]; ++i) {
        pc.run(ints(p.query_tile_row)[qt], ints(p.query_tile_start)[qt], kernels::kTileRows,
               list[i] & kernels::kTileIdMask, list[i] & kernels::kFullTile, suffix_run);
        if (::testing::Test::HasFatalFailure()) return;
      }
    }
  });
  EXPECT_GT(pairs, 10000);
}

// Each backward list entry's stored-dS slot (ds_slot; paired: one a tile) is the index of the same (query tile, key
// tile) pair, with the same kFullTile, in the query tiles' lists, and every slot is written exactly once by each list
// (the dq pass reads every slot of its query tile). (The per-tile list also goes through run_backward_list, which
// over_layouts' pair count needs.)
TEST(TilePlan, StoredDsSlotsNameEachEntrysPairInTheQueryTileLists) {
  over_layouts(20261208, [](PlanCheck& pc) {
    run_backward_list(pc, pc.plan.backward, false);
    if (::testing::Test::HasFatalFailure()) return;
    const TilePlan& p = pc.plan;
    const int32_t *qt_offsets = ints(p.query_tile_offsets), *qt_list = ints(p.query_tile_key_tiles);
    const int64_t slots = p.query_tile_key_tiles.numel();
    for (const bool paired : {false, true}) {
      const BackwardList& l = paired ? p.backward_pairs : p.backward;
      const int width = paired ? 2 : 1;
      const int32_t id_mask = paired ? kernels::kPairTileMask : kernels::kTileIdMask;
      const int32_t *offsets = ints(l.offsets), *list = ints(l.entries), *tiles = ints(l.key_tiles);
      const int32_t* ds_slot = ints(l.ds_slot);
      ASSERT_EQ(l.ds_slot.numel(), width * l.entries.numel());
      std::vector<int> written(slots, 0);
      for (int64_t item = 0; item + 1 < l.offsets.numel(); ++item) {
        for (int32_t i = offsets[item]; i < offsets[item + 1]; ++i) {
          const int32_t entry = list[i], qt = entry & id_mask;
          for (int w = 0; w < width; ++w) {
            const int32_t slot = ds_slot[int64_t(width) * i + w];
            const bool visits = !paired || (entry & (kernels::kPairVisit << w));
            const bool whole = entry & (paired ? kernels::kPairFull << w : kernels::kFullTile);
            if (!visits) {
              ASSERT_EQ(slot, -1) << "paired item " << item << " entry " << i << " tile " << w;
              continue;
            }
            ASSERT_GE(slot, qt_offsets[qt]) << "slot outside query tile " << qt << "'s list";
            ASSERT_LT(slot, qt_offsets[qt + 1]) << "slot outside query tile " << qt << "'s list";
            ASSERT_EQ(qt_list[slot] & kernels::kTileIdMask, tiles[width * item + w]) << "slot of another key tile";
            ASSERT_EQ((qt_list[slot] & kernels::kFullTile) != 0, whole) << "slot " << slot << " whole differs";
            ++written[slot];
          }
        }
      }
      for (int64_t s = 0; s < slots; ++s) ASSERT_EQ(written[s], 1) << "slot " << s << (paired ? " (paired)" : "");
    }
  });
}

// One document of `tokens` tokens with the bench's gist options (c0 16, 3 sinks).
GistLayout bench_layout(int64_t tokens) {
  GistOptions gist;
  gist.chunk = 16, gist.sink = 3;
  Document doc;
  for (int64_t i = 0; i < tokens; ++i) doc.context.push_back(i % 251);
  return build_layout({doc}, gist);
}

// Items sized by the plan (the default): the power of two at or below pairs / 64 within [64, 512], and a plan built
// with it cuts its lists exactly as one built with that number given.
TEST(TilePlan, BackwardItemsBySizeGrowWithThePlansPairs) {
  EXPECT_EQ(backward_item_tiles(0), 64);
  EXPECT_EQ(backward_item_tiles(64 * 128 - 1), 64);
  EXPECT_EQ(backward_item_tiles(64 * 128), 128);
  EXPECT_EQ(backward_item_tiles(64 * 511), 256);
  EXPECT_EQ(backward_item_tiles(64 * 512), 512);
  EXPECT_EQ(backward_item_tiles(int64_t(1) << 40), 512);
  for (const int64_t tokens : {8192, 32768}) {  // the bench's layouts: 64 and 512 tiles an item
    const GistLayout layout = bench_layout(tokens);
    const TilePlan by_size = make_tile_plan({&layout}, 0, -1, 4, at::kCPU);
    const int64_t pairs = by_size.backward.entries.numel();
    const int64_t cap = backward_item_tiles(pairs);
    EXPECT_EQ(cap, tokens == 8192 ? 64 : 512) << pairs << " pairs";
    EXPECT_EQ(by_size.backward_item_tiles, cap);
    EXPECT_EQ(make_tile_plan({&layout}, 0, -1, 4, at::kCPU, kBackwardTilesBySize, false).backward_item_tiles, 0)
        << "an inference plan has no backward items";
    const TilePlan given = make_tile_plan({&layout}, 0, -1, 4, at::kCPU, cap);
    ASSERT_TRUE(at::equal(by_size.backward.offsets, given.backward.offsets)) << tokens << " tokens";
    ASSERT_TRUE(at::equal(by_size.backward.entries, given.backward.entries)) << tokens << " tokens";
    const int32_t* offsets = ints(by_size.backward.offsets);
    int32_t longest = 0;
    for (int64_t item = 0; item + 1 < by_size.backward.offsets.numel(); ++item) {
      longest = std::max(longest, offsets[item + 1] - offsets[item]);
    }
    EXPECT_EQ(longest, cap) << "some key tile's list is longer than an item, so an item is cut at the cap";
  }
}

// The items' order (what the GPU runs at once): longest first, items of one length by their first query tile, and
// a key tile's items in the order of its list.
TEST(TilePlan, BackwardItemsRunLongestFirstThenByFirstQueryTile) {
  const GistLayout layout = bench_layout(32768);
  const TilePlan p = make_tile_plan({&layout}, 0, -1, 4, at::kCPU);
  const int32_t *offsets = ints(p.backward.offsets), *list = ints(p.backward.entries);
  const int32_t* key_tile = ints(p.backward.key_tiles);
  auto first_tile = [&](int64_t item) { return list[offsets[item]] & kernels::kTileIdMask; };
  auto length = [&](int64_t item) { return offsets[item + 1] - offsets[item]; };
  std::vector<int32_t> last_tile_seen(p.key_tile_class.numel(), -1);
  int64_t ties = 0;
  for (int64_t item = 0; item + 1 < p.backward.offsets.numel(); ++item) {
    ASSERT_GT(length(item), 0) << "item " << item << " is empty";
    if (item > 0) {
      ASSERT_GE(length(item - 1), length(item)) << "item " << item << " is longer than the one before";
      if (length(item - 1) == length(item)) {
        ASSERT_LE(first_tile(item - 1), first_tile(item)) << "item " << item << " starts before the one before";
        ++ties;
      }
    }
    ASSERT_GT(first_tile(item), last_tile_seen[key_tile[item]]) << "key tile " << key_tile[item] << "'s items "
                                                                 << "out of their list's order";
    last_tile_seen[key_tile[item]] = list[offsets[item + 1] - 1] & kernels::kTileIdMask;
  }
  EXPECT_GT(ties, 100) << "few items of one length: the order by first query tile went untested";
}

}  // namespace
}  // namespace gsa
