#include "gsa/runtime/tile_plan.h"

#include <algorithm>
#include <numeric>

#include "gsa/runtime/error.h"
#include "gsa/runtime/mask_predicate.h"

namespace gsa {
namespace {

using kernels::kFullTile;
using kernels::kTileKeys;
using kernels::kTileRows;

int64_t tiles_for(int64_t n) { return (n + kTileKeys - 1) / kTileKeys; }

// One key class of one row: its sorted positions and its first global key tile.
struct KeyClass {
  std::vector<int64_t> positions;
  int64_t first_tile = 0;

  // Global ids of the tiles holding class indices [lo, hi).
  void tiles(int64_t lo, int64_t hi, std::vector<int32_t>& out) const {
    if (lo >= hi) return;
    for (int64_t t = lo / kTileKeys; t <= (hi - 1) / kTileKeys; ++t) out.push_back(static_cast<int32_t>(first_tile + t));
  }
  int64_t index_at_or_after(int64_t pos) const {
    return std::lower_bound(positions.begin(), positions.end(), pos) - positions.begin();
  }
  int64_t index_after(int64_t pos) const {
    return std::upper_bound(positions.begin(), positions.end(), pos) - positions.begin();
  }
};

struct RowKeys {
  KeyClass sink;
  std::vector<KeyClass> gists;  // [levels], gists[l] = level l
  KeyClass raw;
};

RowKeys classify_keys(const GistLayout& row) {
  RowKeys keys;
  keys.gists.resize(row.levels());
  for (int64_t t = 0; t < row.size(); ++t) {
    if (row.is_gist(t)) keys.gists[row.level[t]].positions.push_back(t);
    else if (row.sink[t]) keys.sink.positions.push_back(t);
    else keys.raw.positions.push_back(t);
  }
  return keys;
}

}  // namespace

kernels::TilePlanView TilePlan::view() const {
  kernels::TilePlanView v;
  v.num_query_tiles = static_cast<int32_t>(query_tile_row.numel());
  v.query_tile_row = query_tile_row.data_ptr<int32_t>();
  v.query_tile_start = query_tile_start.data_ptr<int32_t>();
  v.query_tile_flags = query_tile_flags.data_ptr<int32_t>();
  v.forward_offsets = forward_offsets.data_ptr<int32_t>();
  v.forward_key_tiles = forward_key_tiles.data_ptr<int32_t>();
  v.num_key_tiles = static_cast<int32_t>(key_tile_positions.numel() / kTileKeys);
  v.key_tile_positions = key_tile_positions.data_ptr<int32_t>();
  v.num_backward_items = static_cast<int32_t>(backward_key_tile.numel());
  v.backward_key_tile = backward_key_tile.data_ptr<int32_t>();
  v.backward_offsets = backward_offsets.data_ptr<int32_t>();
  v.backward_query_tiles = backward_query_tiles.data_ptr<int32_t>();
  v.backward_shared = backward_shared.data_ptr<int32_t>();
  return v;
}

TilePlan make_tile_plan(const std::vector<const GistLayout*>& rows, int64_t q_begin, int64_t num_queries,
                        int64_t group, at::Device device, int64_t max_backward_tiles) {
  GSA_CHECK(!rows.empty(), "tile plan needs at least one row");
  GSA_CHECK(group == 1 || group == 2 || group == 4 || group == 8, "the attention kernels pack 1, 2, 4 or 8 query ",
            "heads per KV head, not ", group);
  GSA_CHECK(max_backward_tiles >= 1, "max_backward_tiles must be >= 1, got ", max_backward_tiles);
  TilePlan plan;
  plan.batch = static_cast<int64_t>(rows.size());
  for (const GistLayout* r : rows) plan.num_keys = std::max(plan.num_keys, r->size());
  plan.q_begin = q_begin;
  plan.num_queries = num_queries < 0 ? plan.num_keys - q_begin : num_queries;
  plan.group = group;
  plan.positions_per_tile = kTileRows / group;
  plan.levels = rows[0]->levels();
  plan.prev_chunks = rows[0]->options.prev_chunks;
  const int64_t T = plan.num_keys, L = plan.levels, N = plan.prev_chunks, P = plan.positions_per_tile;
  const int64_t q_end = q_begin + plan.num_queries;
  GSA_CHECK(q_begin >= 0 && plan.num_queries >= 1 && q_end <= T, "query range [", q_begin, ", ", q_end,
            ") is not inside the ", T, " keys");
  GSA_CHECK(L >= 1 && L <= kernels::kMaxGistLevels, "the attention kernels take 1 to ", kernels::kMaxGistLevels,
            " gist levels, not ", L);

  at::Tensor meta = at::zeros({plan.batch, T, kernels::kTokenMetaInts}, at::kInt);
  at::Tensor row_end = at::zeros({plan.batch}, at::kInt);
  std::vector<int32_t> tile_row, tile_start, tile_flags, fwd_offsets{0}, fwd_tiles, key_positions;
  int64_t num_key_tiles = 0;
  for (int64_t b = 0; b < plan.batch; ++b) {
    const GistLayout& r = *rows[b];
    GSA_CHECK(r.levels() == L && r.options.prev_chunks == N, "all rows of a batch need the same gist levels and ",
              "prev_chunks");
    int32_t* m = meta[b].data_ptr<int32_t>();
    for (int64_t t = 0; t < T; ++t) {
      int32_t* f = m + t * kernels::kTokenMetaInts;
      if (t < r.size()) pack_token_meta(r, t, f);
      else f[kernels::kMetaDoc] = -1;
    }
    const int64_t end = std::min(q_end, r.size());
    row_end[b] = static_cast<int32_t>(std::max(end, q_begin));

    // Key classes laid out as tiles: sinks, gists from the top level down, raw.
    RowKeys keys = classify_keys(r);
    std::vector<KeyClass*> order{&keys.sink};
    for (int64_t l = L - 1; l >= 0; --l) order.push_back(&keys.gists[l]);
    order.push_back(&keys.raw);
    for (KeyClass* c : order) {
      c->first_tile = num_key_tiles;
      const int64_t n = tiles_for(static_cast<int64_t>(c->positions.size()));
      for (int64_t i = 0; i < n * kTileKeys; ++i) {
        key_positions.push_back(i < static_cast<int64_t>(c->positions.size()) ? static_cast<int32_t>(c->positions[i]) : -1);
      }
      num_key_tiles += n;
    }

    const KeyClass& top = keys.gists[L - 1];
    for (int64_t start = q_begin; start < end; start += P) {
      const int64_t last = std::min(start + P, end) - 1;
      const int64_t doc_first = r.doc[start], doc_last = r.doc[last];
      const int64_t doc_begin = r.doc_start[doc_first];
      int32_t flags = 0;
      for (int64_t q = start; q <= last; ++q) flags |= r.suffix[q] ? kernels::kSuffixFlag : 0;
      tile_row.push_back(static_cast<int32_t>(b));
      tile_start.push_back(static_cast<int32_t>(start));
      tile_flags.push_back(flags);

      std::vector<int32_t> visit;
      keys.sink.tiles(keys.sink.index_at_or_after(doc_begin), keys.sink.index_after(last), visit);
      // Top-level gists; a tile wholly before the query tile, inside its one document, is seen whole.
      const int64_t top_lo = top.index_at_or_after(doc_begin), top_hi = top.index_after(last);
      const size_t first_top = visit.size();
      top.tiles(top_lo, top_hi, visit);
      const bool one_doc = doc_first == doc_last && start + P <= end;
      for (size_t i = first_top; i < visit.size(); ++i) {
        const int64_t base = (visit[i] - top.first_tile) * kTileKeys;
        if (!one_doc || base + kTileKeys > static_cast<int64_t>(top.positions.size())) continue;
        const int64_t first_key = top.positions[base], last_key = top.positions[base + kTileKeys - 1];
        if (first_key >= doc_begin && last_key < start && r.doc[first_key] == doc_first) visit[i] |= kFullTile;
      }
      // Lower levels: from the first gist inside the previous N sections or the local window of `start`.
      for (int64_t l = L - 2; l >= 0; --l) {
        const KeyClass& c = keys.gists[l];
        const int64_t min_section = r.chunk[l + 1][start] - N, min_chunk = r.chunk[0][start] - N;
        auto lo = std::partition_point(c.positions.begin(), c.positions.end(), [&](int64_t p) {
          return p < doc_begin || (r.chunk[l + 1][p] < min_section && r.chunk[0][p] < min_chunk);
        });
        c.tiles(lo - c.positions.begin(), c.index_after(last), visit);
      }
      // Raw tokens of the local window of `start` through `last`.
      keys.raw.tiles(keys.raw.index_at_or_after(local_window_start(r, start)), keys.raw.index_after(last), visit);

      fwd_tiles.insert(fwd_tiles.end(), visit.begin(), visit.end());
      fwd_offsets.push_back(static_cast<int32_t>(fwd_tiles.size()));
    }
  }
  const int64_t num_tiles = static_cast<int64_t>(tile_row.size());
  plan.num_pairs = static_cast<int64_t>(fwd_tiles.size());

  // Backward: the pairs bucketed by key tile (counting sort), each bucket cut into items, longest items first.
  std::vector<int32_t> bucket_offsets(num_key_tiles + 1, 0), bucket(fwd_tiles.size());
  for (int32_t e : fwd_tiles) ++bucket_offsets[(e & kernels::kTileIdMask) + 1];
  std::partial_sum(bucket_offsets.begin(), bucket_offsets.end(), bucket_offsets.begin());
  {
    std::vector<int32_t> fill(bucket_offsets.begin(), bucket_offsets.end() - 1);
    for (int64_t qt = 0; qt < num_tiles; ++qt) {
      for (int32_t i = fwd_offsets[qt]; i < fwd_offsets[qt + 1]; ++i) {
        const int32_t e = fwd_tiles[i];
        bucket[fill[e & kernels::kTileIdMask]++] = static_cast<int32_t>(qt) | (e & kFullTile);
      }
    }
  }
  struct Item {
    int32_t key_tile, begin, end, shared;
  };
  std::vector<Item> items;
  for (int64_t kt = 0; kt < num_key_tiles; ++kt) {
    const int32_t begin = bucket_offsets[kt], end = bucket_offsets[kt + 1];
    const int32_t shared = end - begin > max_backward_tiles ? 1 : 0;
    for (int32_t s = begin; s < end; s += static_cast<int32_t>(max_backward_tiles)) {
      items.push_back({static_cast<int32_t>(kt), s, std::min<int32_t>(end, s + static_cast<int32_t>(max_backward_tiles)), shared});
    }
  }
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.end - a.begin > b.end - b.begin; });
  std::vector<int32_t> bwd_tile, bwd_offsets{0}, bwd_list, bwd_shared;
  for (const Item& it : items) {
    bwd_tile.push_back(it.key_tile);
    bwd_list.insert(bwd_list.end(), bucket.begin() + it.begin, bucket.begin() + it.end);
    bwd_offsets.push_back(static_cast<int32_t>(bwd_list.size()));
    bwd_shared.push_back(it.shared);
  }

  auto to_device = [&](const std::vector<int32_t>& v) {
    return at::tensor(at::ArrayRef<int32_t>(v.empty() ? std::vector<int32_t>{0} : v), at::kInt)
        .narrow(0, 0, static_cast<int64_t>(v.size()))
        .to(device);
  };
  plan.token_meta = meta.to(device);
  plan.row_query_end = row_end.to(device);
  plan.query_tile_row = to_device(tile_row);
  plan.query_tile_start = to_device(tile_start);
  plan.query_tile_flags = to_device(tile_flags);
  plan.forward_offsets = to_device(fwd_offsets);
  plan.forward_key_tiles = to_device(fwd_tiles);
  plan.key_tile_positions = to_device(key_positions);
  plan.backward_key_tile = to_device(bwd_tile);
  plan.backward_offsets = to_device(bwd_offsets);
  plan.backward_query_tiles = to_device(bwd_list);
  plan.backward_shared = to_device(bwd_shared);
  return plan;
}

}  // namespace gsa
