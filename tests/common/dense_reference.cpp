#include "common/dense_reference.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "gsa/runtime/mask_predicate.h"
#include "gsa/runtime/selection.h"

namespace gsa::test {
namespace {

// Level-l gist indices (row-wide) of document d, found by scanning.
std::vector<int64_t> gists_of_doc(const GistLayout& row, int64_t l, int64_t d) {
  std::vector<int64_t> out;
  for (size_t j = 0; j < row.gist_pos[l].size(); ++j) {
    if (row.doc[row.gist_pos[l][j]] == d) out.push_back(static_cast<int64_t>(j));
  }
  return out;
}

}  // namespace

std::vector<std::set<int64_t>> brute_force_selection(const GistLayout& row, int64_t pos, const at::Tensor& q,
                                                     const at::Tensor& k, int64_t group,
                                                     const SelectionOptions& options, bool ties_to_higher) {
  const int64_t levels = row.levels();
  const int64_t hq = q.size(0), hkv = k.size(0), g = hq / hkv;
  const int64_t d = row.doc[pos];
  at::Tensor qd = q.to(at::kCPU, at::kDouble), kd = k.to(at::kCPU, at::kDouble);
  auto qa = qd.accessor<double, 2>();
  auto ka = kd.accessor<double, 3>();
  const int64_t key_length = row.pos_in_doc[pos] + 1;
  const int64_t budget = options.budget == BudgetKind::kAdaptive
                             ? adaptive_top_k(key_length, compression_ratio(row.options), g, row.options.chunk)
                             : options.fixed_k;
  std::vector<std::vector<int64_t>> doc_gists(levels);
  std::vector<int64_t> kk(levels);
  for (int64_t l = 0; l < levels; ++l) {
    doc_gists[l] = gists_of_doc(row, l, d);
    kk[l] = std::min<int64_t>(budget, std::max<int64_t>(1, static_cast<int64_t>(doc_gists[l].size()) / 4));
  }
  std::vector<std::set<int64_t>> result(levels);
  for (int64_t h = group * g; h < (group + 1) * g; ++h) {
    std::set<int64_t> parents;
    for (int64_t l = levels - 1; l >= 0; --l) {
      std::vector<std::pair<double, int64_t>> scored;
      for (int64_t j : doc_gists[l]) {
        const int64_t p = row.gist_pos[l][j];
        if (l < levels - 1 && !parents.count(row.chunk[l + 1][p])) continue;
        double s = 0;
        for (int64_t x = 0; x < q.size(1); ++x) s += qa[h][x] * ka[group][p][x];
        scored.emplace_back(s, j);
      }
      // The candidates come in ascending gist order: a stable sort keeps the lower gist first among equal scores.
      if (ties_to_higher) std::reverse(scored.begin(), scored.end());
      std::stable_sort(scored.begin(), scored.end(), [](auto& a, auto& b) { return a.first > b.first; });
      parents.clear();
      for (int64_t i = 0; i < std::min<int64_t>(kk[l], scored.size()); ++i) {
        parents.insert(scored[i].second);
        result[l].insert(scored[i].second);
      }
    }
  }
  return result;
}

at::Tensor dense_keep_mask(const GistLayout& row, int64_t q_begin, int64_t num_queries, const at::Tensor& q,
                           const at::Tensor& k, bool selective, const SelectionOptions& options) {
  const int64_t t_all = row.size();
  const int64_t hkv = k.size(0);
  const int64_t levels = row.levels();
  at::Tensor keep = at::zeros({hkv, num_queries, t_all}, at::kBool);
  auto acc = keep.accessor<bool, 3>();
  for (int64_t qi = 0; qi < num_queries; ++qi) {
    const int64_t p = q_begin + qi;
    const int64_t d = row.doc[p];
    const bool select = selective && row.suffix[p] && row.gists_in_doc(levels - 1, d) > 0;
    for (int64_t key = 0; key < t_all; ++key) {
      bool a = gist_mask_allowed(row, p, key);
      if (select && row.is_gist(key) && !options.keep_unselected_gists) a = false;
      for (int64_t h = 0; h < hkv; ++h) acc[h][qi][key] = a;
    }
    if (!select) continue;
    for (int64_t h = 0; h < hkv; ++h) {
      auto chosen = brute_force_selection(row, p, q.select(1, qi), k, h, options);
      for (int64_t j : chosen[0]) {
        const int64_t closing = row.gist_pos[0][j];
        for (int64_t key = row.doc_start[d]; key < closing; ++key) {
          if (row.chunk[0][key] == j && !row.is_gist(key)) acc[h][qi][key] = true;
        }
      }
      for (int64_t l = 0; l < levels; ++l)
        for (int64_t j : chosen[l]) acc[h][qi][row.gist_pos[l][j]] = true;
    }
  }
  return keep;
}

at::Tensor dense_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& keep,
                           double scale) {
  const int64_t g = q.size(0) / k.size(0);
  at::Tensor qd = q.to(at::kCPU, at::kDouble);
  at::Tensor kd = k.to(at::kCPU, at::kDouble).repeat_interleave(g, 0);
  at::Tensor vd = v.to(at::kCPU, at::kDouble).repeat_interleave(g, 0);
  at::Tensor mask = keep.repeat_interleave(g, 0);
  at::Tensor scores = at::matmul(qd, kd.transpose(-1, -2)) * scale;
  scores = scores.masked_fill(mask.logical_not(), -std::numeric_limits<double>::infinity());
  at::Tensor p = at::softmax(scores, -1);
  p = at::where(mask.any(-1, true), p, at::zeros_like(p));  // rows with no key (padding) -> 0
  return at::matmul(p, vd);
}

}  // namespace gsa::test
