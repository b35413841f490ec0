// The tile plan of the block-sparse GSA attention kernels (kernels/sparse_attention.h): which key tiles every
// block of queries visits, and the reverse lists for the backward, built on the host in O(visited tile pairs)
// from the layouts and moved to the device once per forward (every layer reuses it).
//
// Key classes per row, each padded to whole key tiles of kTileKeys: [top-level gists and sinks | level L-2 gists
// | ... | level-0 gists | other raw tokens]; the sinks sit among the top-level gists in position order, marked by
// key_tile_chunk_up = kSinkChunkUp (gist_mask.h). A run of queries (a forward block of kBlockRows / group
// positions, or a backward tile of kTileRows / group positions) visits: the top-level tiles from its first
// document's first sink or gist up to its last query, for each lower level the gist tiles from the
// first one inside the previous N sections (or the local window) up to its last query, and the raw tiles of the
// local window of its first query through its last. Every allowed (query, key) pair is in exactly one visited
// pair of tiles. A pair is marked kFullTile when every query of the run may see every key of the tile under the
// plain (non-selective) rule: a top-level gist tile wholly before the run, keys and queries all in one
// document, no padding.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

#include "gsa/kernels/sparse_attention.h"
#include "gsa/runtime/gist_layout.h"

namespace gsa {

// A backward list's arrays (kernels::BackwardListView), int32.
struct BackwardList {
  at::Tensor key_tiles;            // [It] (paired: [It * 2])
  at::Tensor offsets;              // [It + 1]
  at::Tensor entries;              // [entries] (id | flags)
  at::Tensor query_start, query_flags;  // [entries]: each entry's query tile start, flags
  at::Tensor shared;               // [It]
  at::Tensor ds_slot;              // [entries] (paired: [entries * 2]): each entry's stored-dS slot (-1: none)

  kernels::BackwardListView view() const;
};

struct TilePlan {
  int64_t batch = 0;
  int64_t num_keys = 0;            // T: padded row length
  int64_t q_begin = 0;
  int64_t num_queries = 0;         // Tq
  int64_t group = 1;               // query heads per KV head the tiles are cut for
  int64_t levels = 1;
  int64_t prev_chunks = 1;
  int64_t num_forward_pairs = 0;   // visited (query block, key tile) pairs
  bool has_backward = true;        // the backward lists below were built
  bool has_padding = false;        // some row has fewer queries than num_queries (outputs there must be zeroed)
  // Built with max_backward_tiles = 0: one backward item per key tile, and the CUDA backward takes dq from the
  // query-block pass instead of atomic adds in the key-tile pass, so gradients are bitwise reproducible.
  bool deterministic = false;
  int64_t backward_item_tiles = 0;  // query tiles a backward item holds at most (0: whole lists, or no backward)

  at::Tensor token_meta;           // [B, T, kTokenMetaInts] int32
  at::Tensor row_query_end;        // [B] int32
  at::Tensor query_block_row, query_block_start, query_block_flags;  // [Qb] int32
  at::Tensor forward_offsets;      // [Qb + 1] int32
  at::Tensor forward_key_tiles;    // [pairs] int32 (id | kFullTile)
  at::Tensor key_tile_class;       // [Kt] int32
  at::Tensor key_tile_row;         // [Kt] int32: the batch row of each key tile
  at::Tensor key_tile_positions;   // [Kt * kTileKeys] int32, -1 = padding
  at::Tensor key_tile_doc, key_tile_chunk0, key_tile_chunk_up;  // [Kt * kTileKeys] int32
  at::Tensor query_tile_row, query_tile_start, query_tile_flags;  // [Qt] int32
  // The key tiles each query tile visits (id | kFullTile), the backward lists' transpose: a pair's index here is its
  // stored-dS slot (kernels::SparseAttentionParams::ds).
  at::Tensor query_tile_offsets;   // [Qt + 1] int32
  at::Tensor query_tile_key_tiles; // [pairs] int32
  BackwardList backward;           // one key tile an item
  BackwardList backward_pairs;     // key tiles kt, kt + 1 of a row an item (kernels::TilePlanView says how)

  // Raw pointers into the tensors above, for the kernels' params.
  kernels::TilePlanView view() const;
};

// max_backward_tiles for items sized by the plan (backward_item_tiles): the default.
constexpr int64_t kBackwardTilesBySize = -1;

// The query tiles a backward work item holds at most, for a plan whose key tiles' backward lists hold `pairs`
// (key tile, query tile) pairs in all: the power of two at or below pairs / 64, within [64, 512]. Longer items
// load their K/V tile and write their dk/dv (atomic adds when a list is cut) fewer times; shorter ones spread the
// key pass over more CTAs. pairs / 64 is about a quarter of an SM's steps with 8 KV heads on 132 SMs (each item
// runs once per KV head), so no item outlasts the rest. Measured on an H200 (docs/PERFORMANCE.md, 8 KV heads):
// forward+backward at 8K / 32K / 128K tokens 1.55 / 9.86-9.90 / 120.8 ms with 64 tiles an item, 2.02 / 9.70 /
// 116.1-117.2 with 512; this rule picks 64, 512, 512.
int64_t backward_item_tiles(int64_t pairs);

// rows: the batch's layouts (same levels and prev_chunks); queries [q_begin, q_begin + num_queries) of every
// row; group: query heads per KV head (1, 2, 4 or 8); a key tile's backward list is cut into work items of at
// most max_backward_tiles query tiles (more items: more parallelism, atomic dk/dv accumulation; 0: one item per
// key tile, no atomics, bitwise reproducible: TilePlan::deterministic; kBackwardTilesBySize: backward_item_tiles
// of the plan's pairs). with_backward = false leaves the backward lists empty (inference).
TilePlan make_tile_plan(const std::vector<const GistLayout*>& rows, int64_t q_begin, int64_t num_queries,
                        int64_t group, at::Device device, int64_t max_backward_tiles = kBackwardTilesBySize,
                        bool with_backward = true);

}  // namespace gsa
