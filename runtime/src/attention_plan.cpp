#include "gsa/runtime/attention_plan.h"

#include <algorithm>

#include <c10/core/GradMode.h>

#include "gsa/runtime/error.h"
#include "padded_rows.h"

namespace gsa {
namespace {

// Pads ragged per-(row, block) position lists into a [B, nb, R] tensor (-1 = padding).
at::Tensor pad_lists(const std::vector<std::vector<std::vector<int64_t>>>& lists, int64_t nb) {
  const int64_t batch = static_cast<int64_t>(lists.size());
  int64_t width = 1;
  for (const auto& row : lists)
    for (const auto& l : row) width = std::max<int64_t>(width, l.size());
  at::Tensor out = at::full({batch, nb, width}, -1, at::kLong);
  auto acc = out.accessor<int64_t, 3>();
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t n = 0; n < nb; ++n)
      for (size_t r = 0; r < lists[b][n].size(); ++r) acc[b][n][r] = lists[b][n][r];
  return out;
}


// The part masks: the predicate restricted to keys older than the band (or inside it), valid keys only.
at::Tensor part_mask(const AttentionPlan& plan, const TokenMeta& q, const TokenMeta& k, const at::Tensor& idx,
                     bool inside_band) {
  at::Tensor allowed = gist_mask_allowed(q, k, plan.levels, plan.prev_chunks);
  at::Tensor k_pos = k.field(TokenMeta::kPos);
  at::Tensor q_pos = q.field(TokenMeta::kPos);
  at::Tensor in_band = k_pos > (q_pos - plan.band_width);
  return allowed.logical_and(inside_band ? in_band : in_band.logical_not()).logical_and(idx >= 0);
}

BlockPart make_block_part(const AttentionPlan& plan, const at::Tensor& idx, bool inside_band,
                          bool gist_keys_only, at::Device device) {
  BlockPart part;
  part.idx = idx.to(device);  // a no-op for the band, built on the device already                                           // [B, nb, R]
  TokenMeta k = gather_meta(plan.meta, part.idx.clamp_min(0));              // [B, nb, R, F]
  TokenMeta kk{k.fields.unsqueeze(2)};                                       // [B, nb, 1, R, F]
  TokenMeta qq{plan.query_meta.fields.unsqueeze(3)};                         // [B, nb, block, 1, F]
  at::Tensor valid = part.idx.unsqueeze(2);                                  // [B, nb, 1, R]
  part.mask = part_mask(plan, qq, kk, valid, inside_band);
  at::Tensor q_suffix = qq.field(TokenMeta::kSuffix).to(at::kBool);         // [B, nb, block, 1]
  if (plan.keep_unselected_gists) {
    part.mask_selective = part.mask;
  } else if (gist_keys_only) {
    part.mask_selective = part.mask.logical_and(q_suffix.logical_not());
  } else {
    at::Tensor k_gist = kk.field(TokenMeta::kLevel) >= 0;                   // [B, nb, 1, R]
    part.mask_selective = part.mask.logical_and(q_suffix.logical_and(k_gist).logical_not());
  }
  return part;
}

}  // namespace

TilePlanCache::TilePlanCache(std::shared_ptr<const std::vector<GistLayout>> rows, int64_t q_begin,
                             int64_t num_queries, at::Device device, bool deterministic)
    : rows_(std::move(rows)), q_begin_(q_begin), num_queries_(num_queries), device_(device),
      deterministic_(deterministic) {}

std::shared_ptr<const TilePlan> TilePlanCache::get(int64_t group) {
  const bool backward = at::GradMode::is_enabled();
  std::shared_ptr<const TilePlan>& plan = plans_[group];
  if (plan == nullptr || (backward && !plan->has_backward)) {
    const int64_t item_tiles = deterministic_ ? 0 : kBackwardTilesBySize;
    plan = std::make_shared<const TilePlan>(make_tile_plan(row_pointers(*rows_), q_begin_, num_queries_, group,
                                                           device_, item_tiles, backward));
  }
  return plan;
}

namespace {

// Queries per run of the reference parts: the option, or as many as keep the parts' two bool masks per query
// (band, sink, lower and top gists) near 64 MiB, in whole blocks.
int64_t reference_chunk_queries(const AttentionPlan& plan, const std::vector<const GistLayout*>& rows,
                                const AttentionOptions& options) {
  if (options.reference_chunk_queries > 0) return options.reference_chunk_queries;
  int64_t keys_per_query = plan.block + plan.band_width + plan.gist.sink;
  int64_t top = 0;
  for (const GistLayout* r : rows) top = std::max<int64_t>(top, r->gist_pos[plan.levels - 1].size());
  keys_per_query += top + (plan.levels > 1 ? (plan.prev_chunks + 1) * plan.gist.fanout * (plan.levels - 1) : 0);
  constexpr int64_t kBudget = int64_t(64) << 20;
  const int64_t per_query = plan.batch * keys_per_query * 2;
  return std::max<int64_t>(plan.block, kBudget / per_query / plan.block * plan.block);
}

// The reference path's band, sink, lower-gist and top-gist parts (attention_plan.h).
void build_reference_parts(AttentionPlan& plan, const std::vector<const GistLayout*>& rows, int64_t q_end) {
  const at::Device device = plan.meta.fields.device();
  const auto long_opts = at::TensorOptions().dtype(at::kLong).device(device);
  const int64_t T = plan.num_keys, L = plan.levels, nb = plan.num_blocks, block = plan.block;
  const int64_t q_begin = plan.q_begin;
  const GistOptions& gist = plan.gist;
  // Band: keys [first query - W + 1, last query of the block].
  const int64_t band_len = block + plan.band_width - 1;
  at::Tensor block_first = at::arange(nb, long_opts) * block + q_begin;      // [nb]
  at::Tensor band_idx = block_first.view({nb, 1}) - (plan.band_width - 1) + at::arange(band_len, long_opts);
  band_idx = band_idx.masked_fill((band_idx < 0).logical_or(band_idx >= T), -1);
  plan.band = make_block_part(plan, band_idx.unsqueeze(0).expand({plan.batch, nb, band_len}).contiguous(),
                              /*inside_band=*/true, /*gist_keys_only=*/false, device);

  // Sink and lower-level gists: host-built index lists per (row, block).
  std::vector<std::vector<std::vector<int64_t>>> sink_lists(plan.batch, std::vector<std::vector<int64_t>>(nb));
  std::vector<std::vector<std::vector<int64_t>>> lower_lists(plan.batch, std::vector<std::vector<int64_t>>(nb));
  for (int64_t b = 0; b < plan.batch; ++b) {
    const GistLayout& r = *rows[b];
    for (int64_t n = 0; n < nb; ++n) {
      const int64_t first = q_begin + n * block;
      const int64_t last = std::min({first + block, q_end, r.size()}) - 1;
      if (first > last) continue;
      for (int64_t d = r.doc[first]; d <= r.doc[last]; ++d) {
        const int64_t len = std::min(gist.sink, r.doc_start[d + 1] - r.doc_start[d]);
        for (int64_t i = 0; i < len; ++i) {
          // Sink keys only: a final gist inside the first `sink` positions belongs to the gist parts.
          if (r.sink[r.doc_start[d] + i]) sink_lists[b][n].push_back(r.doc_start[d] + i);
        }
      }
      for (int64_t l = 0; l + 1 < L; ++l) {
        const auto& g = r.gist_pos[l];
        const auto& parent_chunk = r.chunk[l + 1];
        const int64_t min_section = parent_chunk[first] - plan.prev_chunks;
        auto lo = std::partition_point(g.begin(), g.end(), [&](int64_t p) { return parent_chunk[p] < min_section; });
        auto hi = std::upper_bound(g.begin(), g.end(), last);
        for (auto it = lo; it < hi; ++it) lower_lists[b][n].push_back(*it);
      }
    }
  }
  if (gist.sink > 0) {
    plan.sink = make_block_part(plan, pad_lists(sink_lists, nb), false, false, device);
  }
  if (L > 1) {
    plan.lower_gists = make_block_part(plan, pad_lists(lower_lists, nb), false, true, device);
  }

  // Top-level gists: one compacted list per row, shared by all its blocks.
  std::vector<std::vector<int64_t>> top_rows;
  for (const GistLayout* r : rows) top_rows.push_back(r->gist_pos[L - 1]);
  {
    SharedPart& top = plan.top_gists;
    top.idx = pad_rows(top_rows, -1).to(device);                                       // [B, G]
    TokenMeta k = gather_meta(plan.meta, top.idx.clamp_min(0));                         // [B, G, F]
    TokenMeta kk{k.fields.view({plan.batch, 1, 1, top.idx.size(1), -1})};               // [B, 1, 1, G, F]
    TokenMeta qq{plan.query_meta.fields.unsqueeze(3)};                                  // [B, nb, block, 1, F]
    top.mask = part_mask(plan, qq, kk, top.idx.view({plan.batch, 1, 1, -1}), false);    // [B, nb, block, G]
    at::Tensor q_suffix = qq.field(TokenMeta::kSuffix).to(at::kBool);
    top.mask_selective = plan.keep_unselected_gists ? top.mask : top.mask.logical_and(q_suffix.logical_not());
  }
}

}  // namespace

AttentionPlan make_attention_plan(const std::vector<const GistLayout*>& rows, int64_t q_begin,
                                  int64_t num_queries, const AttentionOptions& options, at::Device device) {
  GSA_CHECK(!rows.empty(), "attention plan needs at least one row");
  AttentionPlan plan;
  plan.batch = static_cast<int64_t>(rows.size());
  for (const GistLayout* r : rows) plan.num_keys = std::max(plan.num_keys, r->size());
  const int64_t T = plan.num_keys;
  plan.q_begin = q_begin;
  plan.num_queries = num_queries < 0 ? T - q_begin : num_queries;
  GSA_CHECK(q_begin >= 0 && plan.num_queries >= 1 && q_begin + plan.num_queries <= T, "query range [", q_begin,
            ", ", q_begin + plan.num_queries, ") is not inside the ", T, " keys");
  const GistOptions& gist = rows[0]->options;
  plan.gist = gist;
  plan.levels = gist.levels;
  plan.prev_chunks = gist.prev_chunks;
  plan.keep_unselected_gists = options.selection.keep_unselected_gists;
  const int64_t L = plan.levels;
  const int64_t q_end = q_begin + plan.num_queries;

  // Band width: the widest local window of a raw or level-0 query.
  plan.band_width = 1;
  for (const GistLayout* r : rows) {
    GSA_CHECK(r->levels() == L && r->options.prev_chunks == plan.prev_chunks && r->options.sink == gist.sink,
              "all rows of a batch need the same gist options");
    for (int64_t q = q_begin; q < std::min(q_end, r->size()); ++q) {
      if (r->level[q] <= 0) plan.band_width = std::max(plan.band_width, q - local_window_start(*r, q) + 1);
    }
  }
  const int64_t auto_block = std::clamp<int64_t>((plan.band_width + 7) / 8 * 8, 16, 128);
  plan.block = std::min(options.query_block > 0 ? options.query_block : auto_block, plan.num_queries);
  plan.num_blocks = (plan.num_queries + plan.block - 1) / plan.block;
  const int64_t nb = plan.num_blocks;
  const int64_t block = plan.block;

  // Model inputs at the query positions, built on the host and moved once.
  {
    at::Tensor inputs = at::zeros({2, plan.batch, plan.num_queries}, at::kLong);
    auto acc = inputs.accessor<int64_t, 3>();
    for (int64_t b = 0; b < plan.batch; ++b) {
      for (int64_t q = q_begin; q < std::min(q_end, rows[b]->size()); ++q) {
        acc[0][b][q - q_begin] = rows[b]->tokens[q];
        acc[1][b][q - q_begin] = rows[b]->rope_pos[q];
      }
    }
    inputs = inputs.to(device);
    plan.tokens = inputs[0];
    plan.rope_pos = inputs[1];
  }

  // Metadata of keys and of the (padded) queries.
  plan.meta = make_token_meta(rows, T, device);
  const auto long_opts = at::TensorOptions().dtype(at::kLong).device(device);
  at::Tensor q_pos = (at::arange(nb * block, long_opts) + q_begin).view({1, nb, block}).expand({plan.batch, nb, block});
  at::Tensor q_valid = q_pos < q_end;
  plan.query_meta = gather_meta(plan.meta, q_pos.clamp_max(T - 1));
  plan.query_meta.fields.select(-1, TokenMeta::kDoc).masked_fill_(q_valid.logical_not(), -1);
  plan.query_meta.fields.select(-1, TokenMeta::kPos).copy_(q_pos);

  plan.options = options;
  plan.backend = options.backend;
  if (options.backend != AttentionBackend::kKernels) {
    const int64_t chunk = reference_chunk_queries(plan, rows, options);
    if (chunk < plan.num_queries) plan.reference_chunk = chunk;
    else build_reference_parts(plan, rows, q_end);
  }
  // The kernels run on CUDA tensors (AUTO) or wherever they are forced (KERNELS: their CPU twin on the CPU).
  const bool kernels_may_run = options.backend == AttentionBackend::kKernels ||
                               (options.backend == AttentionBackend::kAuto && device.is_cuda());
  if (kernels_may_run || plan.reference_chunk > 0) {
    auto copies = std::make_shared<std::vector<GistLayout>>();
    for (const GistLayout* r : rows) copies->push_back(*r);
    plan.rows = std::move(copies);
  }
  if (kernels_may_run) {
    plan.tiles = std::make_shared<TilePlanCache>(plan.rows, q_begin, plan.num_queries, device, options.deterministic);
  }
  plan.selection = make_selection_plan(rows, std::vector<std::pair<int64_t, int64_t>>(rows.size(), {q_begin, q_end}),
                                       device);
  if (plan.selection.count > 0) {
    plan.selection.slot = plan.selection.row * plan.padded_queries() + (plan.selection.pos - q_begin);
  }
  return plan;
}

}  // namespace gsa
