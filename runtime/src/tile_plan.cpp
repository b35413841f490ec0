#include "gsa/runtime/tile_plan.h"

#include <algorithm>
#include <numeric>

#include "gsa/runtime/error.h"
#include "gsa/runtime/mask_predicate.h"

namespace gsa {
namespace {

using kernels::kFullTile;
using kernels::kTileIdMask;
using kernels::kTileKeys;

int64_t tiles_for(int64_t n) { return (n + kTileKeys - 1) / kTileKeys; }

// One key class of one row: its sorted positions and its first global key tile.
struct KeyClass {
  int32_t id = kernels::kClassRaw;
  std::vector<int64_t> positions;
  int64_t first_tile = 0;

  // Global ids of the tiles holding class indices [lo, hi).
  void tiles(int64_t lo, int64_t hi, std::vector<int32_t>& out) const {
    if (lo >= hi) return;
    for (int64_t t = lo / kTileKeys; t <= (hi - 1) / kTileKeys; ++t)
      out.push_back(static_cast<int32_t>(first_tile + t));
  }
  int64_t index_at_or_after(int64_t pos) const {
    return std::lower_bound(positions.begin(), positions.end(), pos) - positions.begin();
  }
  int64_t index_after(int64_t pos) const {
    return std::upper_bound(positions.begin(), positions.end(), pos) - positions.begin();
  }
};

// The key classes of one row in tile order: gists from the top level down, other raw tokens. The sinks sit among
// the top-level gists in position order (the same rule, gist_mask.h), so a run's sinks ride in a tile it sees whole
// instead of a tile of their own that is masked for every run.
struct RowKeys {
  std::vector<KeyClass> classes;  // [L-1-l] level l gists (the top level with the sinks), [L] raw
  const KeyClass& gists(int64_t level, int64_t levels) const { return classes[levels - 1 - level]; }
  const KeyClass& raw() const { return classes.back(); }
};

RowKeys classify_keys(const GistLayout& row) {
  const int64_t L = row.levels();
  RowKeys keys;
  keys.classes.resize(L + 1);
  for (int64_t l = 0; l < L; ++l) keys.classes[L - 1 - l].id = static_cast<int32_t>(l);
  for (int64_t t = 0; t < row.size(); ++t) {
    if (row.is_gist(t))
      keys.classes[L - 1 - row.level[t]].positions.push_back(t);
    else if (row.sink[t])
      keys.classes.front().positions.push_back(t);
    else
      keys.classes.back().positions.push_back(t);
  }
  return keys;
}

// The key tiles the queries [start, last] of `row` visit (tile_plan.h), kFullTile where every pair is allowed;
// `padded`: the run has positions past the row's queries.
std::vector<int32_t> visit_key_tiles(const GistLayout& r, const RowKeys& keys, int64_t start, int64_t last,
                                     bool padded) {
  const int64_t L = r.levels(), N = r.options.prev_chunks;
  const int64_t doc_first = r.doc[start], doc_last = r.doc[last];
  const int64_t doc_begin = r.doc_start[doc_first];
  std::vector<int32_t> visit;
  // Top-level gists and sinks; a tile wholly before the run, inside its one document, is seen whole.
  const KeyClass& top = keys.gists(L - 1, L);
  const size_t first_top = visit.size();
  top.tiles(top.index_at_or_after(doc_begin), top.index_after(last), visit);
  const bool one_doc = doc_first == doc_last && !padded;
  for (size_t i = first_top; i < visit.size() && one_doc; ++i) {
    const int64_t base = (visit[i] - top.first_tile) * kTileKeys;
    if (base + kTileKeys > static_cast<int64_t>(top.positions.size())) continue;
    const int64_t first_key = top.positions[base], last_key = top.positions[base + kTileKeys - 1];
    if (first_key >= doc_begin && last_key < start) visit[i] |= kFullTile;
  }
  // Lower levels: from the first gist inside the previous N sections or the local window of `start`.
  for (int64_t l = L - 2; l >= 0; --l) {
    const KeyClass& c = keys.gists(l, L);
    const int64_t min_section = r.chunk[l + 1][start] - N, min_chunk = r.chunk[0][start] - N;
    auto lo = std::partition_point(c.positions.begin(), c.positions.end(), [&](int64_t p) {
      return p < doc_begin || (r.chunk[l + 1][p] < min_section && r.chunk[0][p] < min_chunk);
    });
    c.tiles(lo - c.positions.begin(), c.index_after(last), visit);
  }
  // Raw tokens of the local window of `start` through `last`.
  keys.raw().tiles(keys.raw().index_at_or_after(local_window_start(r, start)), keys.raw().index_after(last), visit);
  return visit;
}

// Runs of `positions` queries over every row: (row, start, flags) and each run's visit list.
struct Runs {
  std::vector<int32_t> row, start, flags, offsets{0}, tiles;
};

void add_runs(const GistLayout& r, const RowKeys& keys, int64_t b, int64_t q_begin, int64_t end, int64_t positions,
              Runs& runs) {
  for (int64_t start = q_begin; start < end; start += positions) {
    const int64_t last = std::min(start + positions, end) - 1;
    int32_t flags = 0;
    for (int64_t q = start; q <= last; ++q) flags |= r.suffix[q] ? kernels::kSuffixFlag : 0;
    runs.row.push_back(static_cast<int32_t>(b));
    runs.start.push_back(static_cast<int32_t>(start));
    runs.flags.push_back(flags);
    const std::vector<int32_t> visit = visit_key_tiles(r, keys, start, last, start + positions > end);
    runs.tiles.insert(runs.tiles.end(), visit.begin(), visit.end());
    runs.offsets.push_back(static_cast<int32_t>(runs.tiles.size()));
  }
}

// Backward work items over buckets of query-tile entries (bucket k: entries[offsets[k] .. offsets[k + 1]), query
// tile ids, entry & id_mask, increasing; each with slot_width stored-dS slots at slots[slot_width * entry ..]): each
// bucket cut into runs of at most item_tiles entries (0: whole); longest items first (no long item is left for the
// end), items of one length by their first query tile, so the CTAs on the GPU at once stream overlapping query tiles
// and find their Q and dO rows in L2. In bucket order (the order before) the Hopper key pass read them from DRAM: L2
// hit rate 14% at 128K tokens, 2.2 TB/s; ordered by first query tile, forward+backward at 128K took 4% less on an
// H200 (docs/PERFORMANCE.md, twenty-second session).
struct BackwardItems {
  std::vector<int32_t> bucket, offsets{0}, list, shared;  // per item its bucket, [offsets] its entries, shared: the
                                                          // bucket has several items (atomic accumulation)
  std::vector<int32_t> slots;                             // the entries' slots, in list order
};

BackwardItems cut_backward_items(const std::vector<int32_t>& offsets, const std::vector<int32_t>& entries,
                                 const std::vector<int32_t>& slots, int slot_width, int64_t item_tiles,
                                 int32_t id_mask) {
  struct Item {
    int32_t bucket, begin, end, shared;
  };
  std::vector<Item> items;
  const int32_t max_items = item_tiles > 0 ? static_cast<int32_t>(std::min<int64_t>(item_tiles, INT32_MAX)) : INT32_MAX;
  for (size_t k = 0; k + 1 < offsets.size(); ++k) {
    const int32_t begin = offsets[k], end = offsets[k + 1];
    for (int32_t s = begin; s < end; s = s + std::min(max_items, end - s)) {
      items.push_back({static_cast<int32_t>(k), s, s + std::min(max_items, end - s), end - begin > max_items ? 1 : 0});
    }
  }
  std::stable_sort(items.begin(), items.end(), [&](const Item& a, const Item& b) {
    return a.end - a.begin != b.end - b.begin ? a.end - a.begin > b.end - b.begin
                                              : (entries[a.begin] & id_mask) < (entries[b.begin] & id_mask);
  });
  BackwardItems out;
  for (const Item& it : items) {
    out.bucket.push_back(it.bucket);
    out.list.insert(out.list.end(), entries.begin() + it.begin, entries.begin() + it.end);
    out.slots.insert(out.slots.end(), slots.begin() + int64_t(slot_width) * it.begin,
                     slots.begin() + int64_t(slot_width) * it.end);
    out.offsets.push_back(static_cast<int32_t>(out.list.size()));
    out.shared.push_back(it.shared);
  }
  return out;
}

// The paired buckets of the Hopper key pass: key tiles kt and kt + 1 of one row as one bucket (a CTA holds both K / V
// tiles and loads each query tile once for the two), their buckets merged by query tile: entry = query tile id |
// kPairVisit << w | kPairFull << w for each tile w of the pair that sees the query tile (kPairFull: whole).
// pair_tiles: [pairs * 2] the two key tiles, the second -1 where a row's last tile has no partner; pair_slots: [merged
// entries * 2] tile w's stored-dS slot (slots of the unpaired entries) at 2 e + w, -1 where it does not see the tile.
void pair_buckets(const std::vector<int32_t>& offsets, const std::vector<int32_t>& entries,
                  const std::vector<int32_t>& slots, const std::vector<int32_t>& key_row,
                  std::vector<int32_t>& pair_tiles, std::vector<int32_t>& pair_offsets,
                  std::vector<int32_t>& pair_entries, std::vector<int32_t>& pair_slots) {
  const int64_t num_key_tiles = static_cast<int64_t>(key_row.size());
  auto tagged = [](int32_t entry, int w) {
    return (entry & kTileIdMask) | (kernels::kPairVisit << w) | ((entry & kFullTile) ? kernels::kPairFull << w : 0);
  };
  pair_offsets.assign(1, 0);
  for (int64_t kt = 0; kt < num_key_tiles;) {
    const bool two = kt + 1 < num_key_tiles && key_row[kt + 1] == key_row[kt];
    pair_tiles.push_back(static_cast<int32_t>(kt));
    pair_tiles.push_back(two ? static_cast<int32_t>(kt + 1) : -1);
    int32_t i = offsets[kt], j = two ? offsets[kt + 1] : 0;
    const int32_t i_end = offsets[kt + 1], j_end = two ? offsets[kt + 2] : 0;
    while (i < i_end || j < j_end) {
      const int32_t a = i < i_end ? entries[i] & kTileIdMask : INT32_MAX;
      const int32_t b = j < j_end ? entries[j] & kTileIdMask : INT32_MAX;
      int32_t e = std::min(a, b);
      int32_t slot0 = -1, slot1 = -1;
      if (a == e) slot0 = slots[i], e |= tagged(entries[i++], 0);
      if (b == (e & kernels::kPairTileMask)) slot1 = slots[j], e |= tagged(entries[j++], 1);
      pair_entries.push_back(e);
      pair_slots.push_back(slot0);
      pair_slots.push_back(slot1);
    }
    pair_offsets.push_back(static_cast<int32_t>(pair_entries.size()));
    kt += two ? 2 : 1;
  }
}

at::Tensor int_tensor(const std::vector<int32_t>& v, at::Device device) {
  at::Tensor host = at::empty({static_cast<int64_t>(v.size())}, at::kInt);
  std::copy(v.begin(), v.end(), host.data_ptr<int32_t>());
  return host.to(device);
}

// A cut list on the device: each item's key tiles (bucket k holds bucket_tiles[k * tiles_per_bucket ..]), its entries,
// and each entry's query tile start and flags (what the kernels fetch ahead without a dependent load).
BackwardList backward_list(const BackwardItems& items, const std::vector<int32_t>& bucket_tiles, int tiles_per_bucket,
                           const Runs& tiles, int32_t id_mask, at::Device device) {
  std::vector<int32_t> key_tiles, start, flags;
  for (int32_t k : items.bucket) {
    for (int w = 0; w < tiles_per_bucket; ++w) key_tiles.push_back(bucket_tiles[k * tiles_per_bucket + w]);
  }
  for (int32_t entry : items.list) {
    start.push_back(tiles.start[entry & id_mask]);
    flags.push_back(tiles.flags[entry & id_mask]);
  }
  BackwardList out;
  out.key_tiles = int_tensor(key_tiles, device);
  out.offsets = int_tensor(items.offsets, device);
  out.entries = int_tensor(items.list, device);
  out.query_start = int_tensor(start, device);
  out.query_flags = int_tensor(flags, device);
  out.shared = int_tensor(items.shared, device);
  out.ds_slot = int_tensor(items.slots, device);
  return out;
}

}  // namespace

kernels::BackwardListView BackwardList::view() const {
  kernels::BackwardListView v;
  v.num_items = static_cast<int32_t>(shared.numel());
  v.num_entries = entries.numel();
  v.key_tiles = key_tiles.data_ptr<int32_t>();
  v.offsets = offsets.data_ptr<int32_t>();
  v.entries = entries.data_ptr<int32_t>();
  v.query_start = query_start.data_ptr<int32_t>();
  v.query_flags = query_flags.data_ptr<int32_t>();
  v.shared = shared.data_ptr<int32_t>();
  v.ds_slot = ds_slot.data_ptr<int32_t>();
  return v;
}

kernels::TilePlanView TilePlan::view() const {
  kernels::TilePlanView v;
  v.num_query_blocks = static_cast<int32_t>(query_block_row.numel());
  v.query_block_row = query_block_row.data_ptr<int32_t>();
  v.query_block_start = query_block_start.data_ptr<int32_t>();
  v.query_block_flags = query_block_flags.data_ptr<int32_t>();
  v.forward_offsets = forward_offsets.data_ptr<int32_t>();
  v.forward_key_tiles = forward_key_tiles.data_ptr<int32_t>();
  v.num_key_tiles = static_cast<int32_t>(key_tile_class.numel());
  v.key_tile_class = key_tile_class.data_ptr<int32_t>();
  v.key_tile_positions = key_tile_positions.data_ptr<int32_t>();
  v.key_tile_doc = key_tile_doc.data_ptr<int32_t>();
  v.key_tile_chunk0 = key_tile_chunk0.data_ptr<int32_t>();
  v.key_tile_chunk_up = key_tile_chunk_up.data_ptr<int32_t>();
  v.num_query_tiles = static_cast<int32_t>(query_tile_row.numel());
  v.query_tile_row = query_tile_row.data_ptr<int32_t>();
  v.query_tile_start = query_tile_start.data_ptr<int32_t>();
  v.query_tile_flags = query_tile_flags.data_ptr<int32_t>();
  v.num_tile_pairs = query_tile_key_tiles.numel();
  v.query_tile_offsets = query_tile_offsets.data_ptr<int32_t>();
  v.query_tile_key_tiles = query_tile_key_tiles.data_ptr<int32_t>();
  v.backward = backward.view();
  v.backward_pairs = backward_pairs.view();
  return v;
}

int64_t backward_item_tiles(int64_t pairs) {
  int64_t tiles = 64;
  while (tiles < 512 && 2 * tiles <= pairs / 64) tiles *= 2;
  return tiles;
}

TilePlan make_tile_plan(const std::vector<const GistLayout*>& rows, int64_t q_begin, int64_t num_queries, int64_t group,
                        at::Device device, int64_t max_backward_tiles, bool with_backward) {
  GSA_CHECK(!rows.empty(), "tile plan needs at least one row");
  GSA_CHECK(group == 1 || group == 2 || group == 4 || group == 8, "the attention kernels pack 1, 2, 4 or 8 query ",
            "heads per KV head, not ", group);
  GSA_CHECK(max_backward_tiles >= 0 || max_backward_tiles == kBackwardTilesBySize,
            "max_backward_tiles must be >= 0 or kBackwardTilesBySize (-1), got ", max_backward_tiles);
  TilePlan plan;
  plan.batch = static_cast<int64_t>(rows.size());
  for (const GistLayout* r : rows) plan.num_keys = std::max(plan.num_keys, r->size());
  plan.q_begin = q_begin;
  plan.num_queries = num_queries < 0 ? plan.num_keys - q_begin : num_queries;
  plan.group = group;
  plan.levels = rows[0]->levels();
  plan.prev_chunks = rows[0]->options.prev_chunks;
  const int64_t T = plan.num_keys, L = plan.levels, N = plan.prev_chunks;
  const int64_t q_end = q_begin + plan.num_queries;
  GSA_CHECK(q_begin >= 0 && plan.num_queries >= 1 && q_end <= T, "query range [", q_begin, ", ", q_end,
            ") is not inside the ", T, " keys");
  GSA_CHECK(L >= 1 && L <= kernels::kMaxGistLevels, "the attention kernels take 1 to ", kernels::kMaxGistLevels,
            " gist levels, not ", L);

  at::Tensor meta = at::zeros({plan.batch, T, kernels::kTokenMetaInts}, at::kInt);
  at::Tensor row_end = at::zeros({plan.batch}, at::kInt);
  Runs blocks, tiles;
  std::vector<int32_t> key_class, key_row, key_pos, key_doc, key_chunk0, key_chunk_up;
  int64_t num_key_tiles = 0;
  for (int64_t b = 0; b < plan.batch; ++b) {
    const GistLayout& r = *rows[b];
    GSA_CHECK(r.levels() == L && r.options.prev_chunks == N, "all rows of a batch need the same gist levels and ",
              "prev_chunks");
    int32_t* m = meta[b].data_ptr<int32_t>();
    for (int64_t t = 0; t < T; ++t) {
      int32_t* f = m + t * kernels::kTokenMetaInts;
      if (t < r.size())
        pack_token_meta(r, t, f);
      else
        f[kernels::kMetaDoc] = -1;
    }
    const int64_t end = std::max(std::min(q_end, r.size()), q_begin);
    row_end[b] = static_cast<int32_t>(end);
    plan.has_padding = plan.has_padding || end < q_end;

    RowKeys keys = classify_keys(r);
    for (KeyClass& c : keys.classes) {
      c.first_tile = num_key_tiles;
      const int64_t n = tiles_for(static_cast<int64_t>(c.positions.size()));
      const bool lower_gist = c.id >= 0 && c.id + 1 < L;
      for (int64_t i = 0; i < n * kTileKeys; ++i) {
        const bool real = i < static_cast<int64_t>(c.positions.size());
        const int64_t p = real ? c.positions[i] : 0;
        key_pos.push_back(real ? static_cast<int32_t>(p) : -1);
        key_doc.push_back(real ? r.doc[p] : -1);
        key_chunk0.push_back(real ? r.chunk[0][p] : 0);
        key_chunk_up.push_back(!real ? 0 : lower_gist ? r.chunk[c.id + 1][p] : r.sink[p] ? kernels::kSinkChunkUp : 0);
      }
      key_class.insert(key_class.end(), n, c.id);
      key_row.insert(key_row.end(), n, static_cast<int32_t>(b));
      num_key_tiles += n;
    }
    add_runs(r, keys, b, q_begin, end, kernels::kBlockRows / group, blocks);
    if (with_backward) add_runs(r, keys, b, q_begin, end, kernels::kTileRows / group, tiles);
  }
  plan.num_forward_pairs = static_cast<int64_t>(blocks.tiles.size());
  plan.has_backward = with_backward;
  plan.deterministic = max_backward_tiles == 0;

  // Backward: the query tiles' visits bucketed by key tile (counting sort), each entry with its stored-dS slot (its
  // index in the query tiles' visits), each bucket cut into items; and the same buckets paired for the Hopper key
  // pass.
  const int64_t num_tiles = static_cast<int64_t>(tiles.row.size());
  const int64_t max_query_tiles = int64_t(kernels::kPairTileMask) + 1;
  GSA_CHECK(num_tiles <= max_query_tiles, "a plan holds at most ", max_query_tiles, " query tiles, this one ",
            num_tiles);
  const int64_t num_tile_pairs = static_cast<int64_t>(tiles.tiles.size());
  GSA_CHECK(num_tile_pairs <= INT32_MAX, "a plan holds at most ", INT32_MAX, " (query tile, key tile) pairs, this one ",
            num_tile_pairs);
  std::vector<int32_t> bucket_offsets(num_key_tiles + 1, 0), bucket(num_tile_pairs), bucket_slot(num_tile_pairs);
  for (int32_t e : tiles.tiles) ++bucket_offsets[(e & kTileIdMask) + 1];
  std::partial_sum(bucket_offsets.begin(), bucket_offsets.end(), bucket_offsets.begin());
  {
    std::vector<int32_t> fill(bucket_offsets.begin(), bucket_offsets.end() - 1);
    for (int64_t qt = 0; qt < num_tiles; ++qt) {
      for (int32_t i = tiles.offsets[qt]; i < tiles.offsets[qt + 1]; ++i) {
        const int32_t e = tiles.tiles[i];
        bucket_slot[fill[e & kTileIdMask]] = i;
        bucket[fill[e & kTileIdMask]++] = static_cast<int32_t>(qt) | (e & kFullTile);
      }
    }
  }
  const int64_t item_tiles = max_backward_tiles == kBackwardTilesBySize
                                 ? backward_item_tiles(static_cast<int64_t>(bucket.size()))
                                 : max_backward_tiles;
  plan.backward_item_tiles = with_backward ? item_tiles : 0;
  std::vector<int32_t> single_tiles(num_key_tiles), pair_tiles, pair_offsets, pair_entries, pair_slots;
  std::iota(single_tiles.begin(), single_tiles.end(), 0);
  pair_buckets(bucket_offsets, bucket, bucket_slot, key_row, pair_tiles, pair_offsets, pair_entries, pair_slots);
  const BackwardItems items = cut_backward_items(bucket_offsets, bucket, bucket_slot, 1, item_tiles, kTileIdMask);
  plan.backward = backward_list(items, single_tiles, 1, tiles, kTileIdMask, device);
  const BackwardItems pair_items =
      cut_backward_items(pair_offsets, pair_entries, pair_slots, 2, item_tiles, kernels::kPairTileMask);
  plan.backward_pairs = backward_list(pair_items, pair_tiles, 2, tiles, kernels::kPairTileMask, device);

  auto to_device = [&](const std::vector<int32_t>& v) { return int_tensor(v, device); };
  plan.token_meta = meta.to(device);
  plan.row_query_end = row_end.to(device);
  plan.query_block_row = to_device(blocks.row);
  plan.query_block_start = to_device(blocks.start);
  plan.query_block_flags = to_device(blocks.flags);
  plan.forward_offsets = to_device(blocks.offsets);
  plan.forward_key_tiles = to_device(blocks.tiles);
  plan.key_tile_class = to_device(key_class);
  plan.key_tile_row = to_device(key_row);
  plan.key_tile_positions = to_device(key_pos);
  plan.key_tile_doc = to_device(key_doc);
  plan.key_tile_chunk0 = to_device(key_chunk0);
  plan.key_tile_chunk_up = to_device(key_chunk_up);
  plan.query_tile_row = to_device(tiles.row);
  plan.query_tile_start = to_device(tiles.start);
  plan.query_tile_flags = to_device(tiles.flags);
  plan.query_tile_offsets = to_device(tiles.offsets);
  plan.query_tile_key_tiles = to_device(tiles.tiles);
  return plan;
}

}  // namespace gsa
