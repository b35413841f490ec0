// CPU twin of chunk_selection_cuda: the same tables, budgets and output layout, float64 scores, each head's
// best kk by a sort (ties: the lower candidate first), the union by an ordered set.
#include <algorithm>
#include <set>
#include <utility>
#include <vector>

#include "gsa/kernels/chunk_selection.h"
#include "half_storage.h"

namespace gsa::kernels {

Status chunk_selection_reference(const ChunkSelectionParams& p) {
  const int group = p.kv_heads > 0 ? p.q_heads / p.kv_heads : 0;
  if (p.num_queries < 0 || p.kv_heads < 1 || group < 1 || p.q_heads % p.kv_heads != 0 || p.head_dim < 1 ||
      p.levels < 1 || p.levels > kMaxSelectionLevels || !p.q || p.k.empty() || !p.key_pos ||
      (p.key_slot != nullptr && p.key_slot_stride < 1)) {
    return Status::kInvalidArgument;
  }
  const int L = p.levels, D = p.head_dim;
  int64_t raw_slots = int64_t(group) * p.keep[0] * p.max_chunk_span, R = raw_slots;
  for (int l = 0; l < L; ++l) R += int64_t(group) * p.keep[l];
  if (p.key_pos_row_stride != 0 && p.key_pos_row_stride < R) return Status::kInvalidArgument;
  const int64_t list_stride = p.key_pos_row_stride > 0 ? p.key_pos_row_stride : R;
  for (int s = 0; s < p.num_queries; ++s) {
    const int64_t row = p.row[s];
    const int64_t budget = p.fixed_k > 0 ? p.fixed_k : p.key_length[s] / p.compression / group / p.chunk + 1;
    for (int kv = 0; kv < p.kv_heads; ++kv) {
      std::vector<std::vector<int64_t>> chosen(group);  // per head, the current level's choice
      std::vector<std::set<int64_t>> unions(L);
      for (int l = L - 1; l >= 0; --l) {
        const int64_t kk =
            std::min({budget, std::max<int64_t>(1, p.doc_gists[int64_t(s) * L + l] / 4), int64_t{p.keep[l]}});
        const int64_t* gist_pos = p.gist_pos[l] + row * p.gist_stride[l];
        for (int g = 0; g < group; ++g) {
          std::vector<int64_t> candidates;
          if (l == L - 1) {
            for (int64_t c = 0; c < p.doc_gists[int64_t(s) * L + l]; ++c) candidates.push_back(p.top_begin[s] + c);
          } else {
            const int64_t* begin = p.child_begin[l + 1] + row * p.gist_stride[l + 1];
            const int64_t* count = p.child_count[l + 1] + row * p.gist_stride[l + 1];
            for (int64_t parent : chosen[g])
              for (int64_t i = 0; i < count[parent]; ++i) candidates.push_back(begin[parent] + i);
          }
          const int64_t h = int64_t(kv) * group + g;
          std::vector<std::pair<double, int64_t>> scored;
          for (int64_t c : candidates) {
            const int64_t key = p.key_slot != nullptr ? p.key_slot[row * p.key_slot_stride + gist_pos[c]] : gist_pos[c];
            if (key < 0) return Status::kInvalidArgument;  // a gist this rank does not hold
            double dot = 0;
            for (int d = 0; d < D; ++d) {
              dot += detail::load_element(p.q, s * p.q_stride[0] + h * p.q_stride[1] + d, p.dtype) *
                     detail::load_element(p.k.head<const uint16_t>(static_cast<int>(row), kv, p.kv_heads),
                                          key * p.k.row_stride + d, p.dtype);
            }
            scored.push_back({-dot, c});
          }
          std::sort(scored.begin(), scored.end());
          chosen[g].clear();
          for (int64_t j = 0; j < std::min<int64_t>(kk, scored.size()); ++j) chosen[g].push_back(scored[j].second);
          unions[l].insert(chosen[g].begin(), chosen[g].end());
        }
      }
      int32_t* key_pos = p.key_pos + (int64_t(s) * p.kv_heads + kv) * list_stride;
      auto is_covered = [&](int64_t pos) {
        return p.covered != nullptr && p.covered[row * p.covered_stride + pos] != 0;
      };
      int64_t gist_slot = raw_slots;
      for (int l = 0; l < L; ++l) {
        const int64_t M = int64_t(group) * p.keep[l];
        int32_t* selected = p.selected[l] != nullptr ? p.selected[l] + (int64_t(s) * p.kv_heads + kv) * M : nullptr;
        const int64_t* gist_pos = p.gist_pos[l] + row * p.gist_stride[l];
        int64_t j = 0;
        for (int64_t idx : unions[l]) {
          if (selected != nullptr) selected[j] = static_cast<int32_t>(idx);
          key_pos[gist_slot + j] = is_covered(gist_pos[idx]) ? -1 : static_cast<int32_t>(gist_pos[idx]);
          if (l == 0) {
            for (int i = 0; i < p.max_chunk_span; ++i) {
              const int64_t pos = p.chunk_begin[row * p.gist_stride[0] + idx] + i;
              const bool raw = pos < gist_pos[idx] && p.key_level[row * p.key_level_stride + pos] < 0;
              key_pos[j * p.max_chunk_span + i] = raw && !is_covered(pos) ? static_cast<int32_t>(pos) : -1;
            }
          }
          ++j;
        }
        for (; j < M; ++j) {
          if (selected != nullptr) selected[j] = -1;
          key_pos[gist_slot + j] = -1;
          if (l == 0)
            for (int i = 0; i < p.max_chunk_span; ++i) key_pos[j * p.max_chunk_span + i] = -1;
        }
        gist_slot += M;
      }
    }
  }
  return Status::kOk;
}

}  // namespace gsa::kernels
