#include "gsa/runtime/mask_predicate.h"

#include "gsa/kernels/gist_mask.h"
#include "gsa/runtime/error.h"

namespace gsa {

void pack_token_meta(const GistLayout& layout, int64_t t, int32_t* out) {
  for (int i = 0; i < kernels::kTokenMetaInts; ++i) out[i] = 0;
  out[kernels::kMetaLevel] = layout.level[t];
  out[kernels::kMetaDoc] = layout.doc[t];
  out[kernels::kMetaFlags] = (layout.sink[t] ? kernels::kSinkFlag : 0) | (layout.suffix[t] ? kernels::kSuffixFlag : 0);
  for (int64_t l = 0; l < layout.levels(); ++l) out[kernels::kMetaChunk0 + l] = layout.chunk[l][t];
}

bool gist_mask_allowed(const GistLayout& layout, int64_t q, int64_t k) {
  int32_t q_meta[kernels::kTokenMetaInts], k_meta[kernels::kTokenMetaInts];
  pack_token_meta(layout, q, q_meta);
  pack_token_meta(layout, k, k_meta);
  kernels::GistMaskRule rule;
  rule.levels = static_cast<int32_t>(layout.levels());
  rule.prev_chunks = static_cast<int32_t>(layout.options.prev_chunks);
  return kernels::gist_mask_allows(q, q_meta, k, k_meta, rule);
}

TokenMeta make_token_meta(const std::vector<const GistLayout*>& rows, int64_t padded_length, at::Device device) {
  GSA_CHECK(!rows.empty(), "make_token_meta needs at least one row");
  const int64_t levels = rows[0]->levels();
  const int64_t fields = TokenMeta::kMetaFields + levels;
  const int64_t batch = static_cast<int64_t>(rows.size());
  at::Tensor host = at::zeros({batch, padded_length, fields}, at::kLong);
  auto acc = host.accessor<int64_t, 3>();
  for (int64_t b = 0; b < batch; ++b) {
    const GistLayout& row = *rows[b];
    GSA_CHECK(row.levels() == levels, "all rows of a batch need the same gist levels (", row.levels(), " vs ",
              levels, ")");
    GSA_CHECK(row.size() <= padded_length, "row ", b, " has ", row.size(), " tokens, more than ", padded_length);
    for (int64_t t = 0; t < padded_length; ++t) {
      acc[b][t][TokenMeta::kPos] = t;
      if (t >= row.size()) {
        acc[b][t][TokenMeta::kDoc] = -1;
        continue;
      }
      acc[b][t][TokenMeta::kLevel] = row.level[t];
      acc[b][t][TokenMeta::kDoc] = row.doc[t];
      acc[b][t][TokenMeta::kSink] = row.sink[t];
      acc[b][t][TokenMeta::kSuffix] = row.suffix[t];
      for (int64_t l = 0; l < levels; ++l) acc[b][t][TokenMeta::kChunk0 + l] = row.chunk[l][t];
    }
  }
  return TokenMeta{host.to(device)};
}

TokenMeta gather_meta(const TokenMeta& meta, const at::Tensor& idx) {
  const int64_t batch = meta.fields.size(0);
  const int64_t fields = meta.fields.size(2);
  at::Tensor flat = idx.reshape({batch, -1, 1}).expand({batch, -1, fields});
  at::Tensor gathered = at::gather(meta.fields, 1, flat);  // [B, n, F]
  std::vector<int64_t> shape(idx.sizes().begin(), idx.sizes().end());
  shape.push_back(fields);
  return TokenMeta{gathered.view(shape)};
}

at::Tensor gist_mask_allowed(const TokenMeta& q, const TokenMeta& k, int64_t levels, int64_t prev_chunks) {
  const int64_t top = levels - 1;
  at::Tensor k_level = k.field(TokenMeta::kLevel);
  at::Tensor q_level = q.field(TokenMeta::kLevel);
  auto within = [&](const at::Tensor& d) { return (d >= 0).logical_and(d <= prev_chunks); };

  at::Tensor visible = k.field(TokenMeta::kSink).to(at::kBool).logical_or(k_level == top);
  for (int64_t l = 0; l < top; ++l) {
    at::Tensor d = q.chunk(l + 1) - k.chunk(l + 1);
    // Previous sections only for queries that are not gists above level l+1 (kernels/gist_mask.h).
    at::Tensor section = (d == 0).logical_or(within(d).logical_and(q_level <= l + 1));
    visible = visible.logical_or((k_level == l).logical_and(section));
  }
  at::Tensor local = (q_level <= 0).logical_and(within(q.chunk(0) - k.chunk(0)));
  visible = visible.logical_or(local);

  at::Tensor k_doc = k.field(TokenMeta::kDoc);
  at::Tensor base = (k.field(TokenMeta::kPos) <= q.field(TokenMeta::kPos))
                        .logical_and(k_doc == q.field(TokenMeta::kDoc))
                        .logical_and(k_doc >= 0);
  return base.logical_and(visible);
}

}  // namespace gsa
