#include "gsa/runtime/selection_plan.h"

#include <algorithm>

#include "gsa/runtime/error.h"
#include "padded_rows.h"

namespace gsa {

SelectionPlan make_selection_plan(const std::vector<const GistLayout*>& rows,
                                  const std::vector<std::pair<int64_t, int64_t>>& query_ranges, at::Device device) {
  GSA_CHECK(!rows.empty() && rows.size() == query_ranges.size(), "make_selection_plan: ", rows.size(), " rows and ",
            query_ranges.size(), " query ranges");
  const int64_t L = rows[0]->levels();
  SelectionPlan sel;
  std::vector<int64_t> s_row, s_pos, s_len, s_top_begin, s_doc_gists;
  for (size_t b = 0; b < rows.size(); ++b) {
    const GistLayout& r = *rows[b];
    const int64_t end = std::min(query_ranges[b].second, r.size());
    for (int64_t q = std::max<int64_t>(query_ranges[b].first, 0); q < end; ++q) {
      const int64_t d = r.doc[q];
      if (!r.suffix[q] || r.gists_in_doc(L - 1, d) == 0) continue;
      s_row.push_back(static_cast<int64_t>(b));
      s_pos.push_back(q);
      s_len.push_back(r.pos_in_doc[q] + 1);
      const auto& top = r.gist_pos[L - 1];
      s_top_begin.push_back(std::lower_bound(top.begin(), top.end(), r.doc_start[d]) - top.begin());
      for (int64_t l = 0; l < L; ++l) s_doc_gists.push_back(r.gists_in_doc(l, d));
      sel.max_top = std::max(sel.max_top, r.gists_in_doc(L - 1, d));
    }
  }
  sel.count = static_cast<int64_t>(s_row.size());
  if (sel.count == 0) return sel;
  auto to_dev = [&](const std::vector<int64_t>& v) { return at::tensor(v, at::kLong).to(device); };
  sel.row = to_dev(s_row);
  sel.pos = to_dev(s_pos);
  sel.key_length = to_dev(s_len);
  sel.top_begin = to_dev(s_top_begin);
  sel.doc_gists = to_dev(s_doc_gists).view({sel.count, L});
  for (int64_t l = 0; l < L; ++l) {
    std::vector<std::vector<int64_t>> pos_rows, begin_rows, count_rows;
    int64_t max_children = 0;
    for (const GistLayout* r : rows) {
      pos_rows.push_back(r->gist_pos[l]);
      if (l == 0) continue;
      // Children of level-l gist j: the level-(l-1) gists whose chunk_l is j (a contiguous index range).
      const auto& child = r->gist_pos[l - 1];
      std::vector<int64_t> begin(r->gist_pos[l].size()), count(r->gist_pos[l].size());
      for (size_t j = 0; j < begin.size(); ++j) {
        auto key = [&](int64_t p) { return r->chunk[l][p]; };
        auto lo = std::partition_point(child.begin(), child.end(), [&](int64_t p) { return key(p) < (int64_t)j; });
        auto hi = std::partition_point(lo, child.end(), [&](int64_t p) { return key(p) <= (int64_t)j; });
        begin[j] = lo - child.begin();
        count[j] = hi - lo;
        max_children = std::max<int64_t>(max_children, count[j]);
      }
      begin_rows.push_back(begin);
      count_rows.push_back(count);
    }
    sel.gist_pos.push_back(pad_rows(pos_rows, -1).to(device));
    sel.child_begin.push_back(l == 0 ? at::Tensor() : pad_rows(begin_rows, 0).to(device));
    sel.child_count.push_back(l == 0 ? at::Tensor() : pad_rows(count_rows, 0).to(device));
    sel.max_children.push_back(max_children);
  }
  std::vector<std::vector<int64_t>> chunk_begin_rows;
  std::vector<std::vector<int8_t>> level_rows;
  for (const GistLayout* r : rows) {
    const auto& g = r->gist_pos[0];
    std::vector<int64_t> begin(g.size());
    for (size_t j = 0; j < g.size(); ++j) {
      const bool first_in_doc = j == 0 || r->doc[g[j - 1]] != r->doc[g[j]];
      begin[j] = first_in_doc ? r->doc_start[r->doc[g[j]]] : g[j - 1] + 1;
      sel.max_chunk_span = std::max(sel.max_chunk_span, g[j] - begin[j]);
    }
    chunk_begin_rows.push_back(begin);
    level_rows.push_back(r->level);
  }
  sel.chunk_begin = pad_rows(chunk_begin_rows, 0).to(device);
  sel.key_level = pad_rows(level_rows, kRawLevel, at::kChar).to(device);
  return sel;
}


SelectionPlan stack_selection_plans(const std::vector<const SelectionPlan*>& parts, const std::vector<int64_t>& rows,
                                    int64_t levels, at::Device device) {
  GSA_CHECK(!parts.empty() && parts.size() == rows.size(), "stack_selection_plans: ", parts.size(), " plans for ",
            rows.size(), " row counts");
  SelectionPlan out;
  std::vector<at::Tensor> row, pos, key_length, doc_gists, top_begin;
  int64_t offset = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const SelectionPlan& p = *parts[i];
    if (p.count > 0) {
      out.count += p.count;
      row.push_back(p.row + offset);
      pos.push_back(p.pos);
      key_length.push_back(p.key_length);
      doc_gists.push_back(p.doc_gists);
      top_begin.push_back(p.top_begin);
      out.max_top = std::max(out.max_top, p.max_top);
      out.max_chunk_span = std::max(out.max_chunk_span, p.max_chunk_span);
    }
    offset += rows[i];
  }
  if (out.count == 0) return out;
  out.row = at::cat(row);
  out.pos = at::cat(pos);
  out.key_length = at::cat(key_length);
  out.doc_gists = at::cat(doc_gists);
  out.top_begin = at::cat(top_begin);
  auto table = [&](auto pick, int64_t fill, at::ScalarType dtype) {  // parts without tables: rows of fill
    std::vector<at::Tensor> tables;
    for (size_t i = 0; i < parts.size(); ++i) {
      tables.push_back(parts[i]->count > 0 ? pick(*parts[i])
                                           : at::full({rows[i], 1}, fill, at::TensorOptions().dtype(dtype).device(device)));
    }
    return stack_padded(tables, fill);
  };
  for (int64_t l = 0; l < levels; ++l) {
    out.gist_pos.push_back(table([&](const SelectionPlan& p) { return p.gist_pos[l]; }, -1, at::kLong));
    int64_t max_children = 0;
    for (const SelectionPlan* p : parts)
      if (p->count > 0) max_children = std::max(max_children, p->max_children[l]);
    out.max_children.push_back(max_children);
    if (l == 0) {
      out.child_begin.emplace_back();
      out.child_count.emplace_back();
      continue;
    }
    out.child_begin.push_back(table([&](const SelectionPlan& p) { return p.child_begin[l]; }, 0, at::kLong));
    out.child_count.push_back(table([&](const SelectionPlan& p) { return p.child_count[l]; }, 0, at::kLong));
  }
  out.chunk_begin = table([](const SelectionPlan& p) { return p.chunk_begin; }, 0, at::kLong);
  out.key_level = table([](const SelectionPlan& p) { return p.key_level; }, kRawLevel, at::kChar);
  return out;
}

}  // namespace gsa
