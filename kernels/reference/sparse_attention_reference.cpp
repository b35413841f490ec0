// CPU reference twins of the block-sparse GSA attention kernels: the same plan walk (a query row visits the
// key tiles of its query block's list, the mask rule evaluated unless the entry is kFullTile), in float64.
// The backward walks the forward lists too (the same pairs as the backward items, grouped the other way).
// The backward recomputes out and lse in float64 rather than reading the forward's rounded values.
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "../src/sparse_attention_launch.h"
#include "gsa/kernels/sparse_attention.h"
#include "half_storage.h"

namespace gsa::kernels {
namespace {

using detail::load_element;
using detail::store_element;

struct RowRef {
  int b, head, pos;     // query row
  int64_t q_off, stat;  // element offset in q-shaped tensors, index in lse-shaped ones
};

// Calls visit(k/v row) for every key the plan lets query row `row` of query block `tile` attend to and that k/v
// holds.
template <typename Visit>
void for_each_key(const SparseAttentionParams& p, int tile, const RowRef& row, Visit visit) {
  const TilePlanView& t = p.plan;
  const bool suffix_sees_no_gists =
      p.rule.selective && !p.rule.keep_unselected_gists && (t.query_block_flags[tile] & kSuffixFlag);
  const int32_t* q_meta = p.token_meta + (int64_t(row.b) * p.num_keys + row.pos) * kTokenMetaInts;
  for (int e = t.forward_offsets[tile]; e < t.forward_offsets[tile + 1]; ++e) {
    const int32_t entry = t.forward_key_tiles[e];
    const bool gist_tile = t.key_tile_class[entry & kTileIdMask] >= 0;
    const bool full = (entry & kFullTile) && !(gist_tile && suffix_sees_no_gists);
    const int64_t first_key = int64_t(entry & kTileIdMask) * kTileKeys;
    for (int c = 0; c < kTileKeys; ++c) {
      const int32_t pos = t.key_tile_positions[first_key + c];
      const int32_t kv_row = p.key_rows != nullptr ? p.key_rows[first_key + c] : pos;
      if (kv_row < 0) continue;
      const int32_t* k_meta = p.token_meta + (int64_t(row.b) * p.num_keys + pos) * kTokenMetaInts;
      if (full || gist_mask_allows(row.pos, q_meta, pos, k_meta, p.rule)) visit(kv_row);
    }
  }
}

// Calls f(tile, row) for every valid query row of the plan.
template <typename F>
void for_each_row(const SparseAttentionParams& p, F f) {
  const int group = p.q_heads / p.kv_heads, per_head = kBlockRows / group;
  for (int tile = 0; tile < p.plan.num_query_blocks; ++tile) {
    const int b = p.plan.query_block_row[tile], start = p.plan.query_block_start[tile];
    for (int kv = 0; kv < p.kv_heads; ++kv) {
      for (int r = 0; r < kBlockRows; ++r) {
        RowRef row{b, kv * group + r / per_head, start + r % per_head, 0, 0};
        if (row.pos >= p.row_query_end[b]) continue;
        row.q_off = b * p.q_stride[0] + row.head * p.q_stride[1] + int64_t(row.pos - p.q_begin) * p.q_stride[2];
        row.stat = (int64_t(b) * p.q_heads + row.head) * p.num_queries + (row.pos - p.q_begin);
        f(tile, row);
      }
    }
  }
}

struct RowSoftmax {
  std::vector<int32_t> keys;
  std::vector<double> prob;  // normalised
  double lse = -std::numeric_limits<double>::infinity();
};

RowSoftmax row_softmax(const SparseAttentionParams& p, int tile, const RowRef& row, int64_t kv_off) {
  RowSoftmax s;
  const int D = p.head_dim;
  std::vector<double> score;
  for_each_key(p, tile, row, [&](int32_t pos) {
    double dot = 0;
    for (int d = 0; d < D; ++d) {
      dot += load_element(p.q, row.q_off + d, p.dtype) * load_element(p.k, kv_off + pos * p.kv_stride[2] + d, p.dtype);
    }
    s.keys.push_back(pos);
    score.push_back(dot * p.scale);
  });
  if (s.keys.empty()) return s;
  double m = -std::numeric_limits<double>::infinity();
  for (double x : score) m = std::max(m, x);
  double sum = 0;
  for (double x : score) sum += std::exp(x - m);
  s.lse = m + std::log(sum);
  for (double x : score) s.prob.push_back(std::exp(x - s.lse));
  return s;
}

int64_t kv_offset(const SparseAttentionParams& p, const RowRef& row) {
  return row.b * p.kv_stride[0] + int64_t(row.head / (p.q_heads / p.kv_heads)) * p.kv_stride[1];
}

}  // namespace

Status sparse_attention_forward_reference(const SparseAttentionParams& p) {
  const Status status = detail::check_sparse_attention_params(p, /*backward=*/false);
  if (status != Status::kOk) return status;
  const int D = p.head_dim;
  for_each_row(p, [&](int tile, const RowRef& row) {
    const int64_t kv_off = kv_offset(p, row);
    const RowSoftmax s = row_softmax(p, tile, row, kv_off);
    for (int d = 0; d < D; ++d) {
      double o = 0;
      for (size_t j = 0; j < s.keys.size(); ++j)
        o += s.prob[j] * load_element(p.v, kv_off + s.keys[j] * p.kv_stride[2] + d, p.dtype);
      store_element(p.out, row.q_off + d, o, p.dtype);
    }
    p.lse[row.stat] = static_cast<float>(s.lse);
  });
  return Status::kOk;
}

Status sparse_attention_backward_reference(const SparseAttentionParams& p) {
  const Status status = detail::check_sparse_attention_params(p, /*backward=*/true);
  if (status != Status::kOk) return status;
  const int D = p.head_dim;
  const int64_t kv_elems = int64_t(p.batch) * p.kv_heads * p.kv_rows * D;
  std::vector<double> dk(kv_elems, 0.0), dv(kv_elems, 0.0);  // contiguous [B, Hkv, T, D]
  auto acc_index = [&](const RowRef& row, int32_t pos) {
    return ((int64_t(row.b) * p.kv_heads + row.head / (p.q_heads / p.kv_heads)) * p.kv_rows + pos) * D;
  };
  for_each_row(p, [&](int tile, const RowRef& row) {
    const int64_t kv_off = kv_offset(p, row);
    const RowSoftmax s = row_softmax(p, tile, row, kv_off);
    std::vector<double> out(D, 0.0), grad(D);
    for (int d = 0; d < D; ++d) {
      grad[d] = load_element(p.d_out, row.q_off + d, p.dtype);
      for (size_t j = 0; j < s.keys.size(); ++j)
        out[d] += s.prob[j] * load_element(p.v, kv_off + s.keys[j] * p.kv_stride[2] + d, p.dtype);
    }
    double delta = p.d_lse != nullptr ? -double(p.d_lse[row.stat]) : 0.0;
    for (int d = 0; d < D; ++d) delta += grad[d] * out[d];
    std::vector<double> dq(D, 0.0);
    for (size_t j = 0; j < s.keys.size(); ++j) {
      const int64_t k_off = kv_off + s.keys[j] * p.kv_stride[2];
      double dp = 0;
      for (int d = 0; d < D; ++d) dp += grad[d] * load_element(p.v, k_off + d, p.dtype);
      const double ds = s.prob[j] * (dp - delta) * p.scale;
      const int64_t a = acc_index(row, s.keys[j]);
      for (int d = 0; d < D; ++d) {
        dq[d] += ds * load_element(p.k, k_off + d, p.dtype);
        dk[a + d] += ds * load_element(p.q, row.q_off + d, p.dtype);
        dv[a + d] += s.prob[j] * grad[d];
      }
    }
    for (int d = 0; d < D; ++d) store_element(p.dq, row.q_off + d, dq[d], p.dtype);
  });
  for (int b = 0; b < p.batch; ++b) {
    for (int h = 0; h < p.kv_heads; ++h) {
      for (int t = 0; t < p.kv_rows; ++t) {
        const int64_t a = ((int64_t(b) * p.kv_heads + h) * p.kv_rows + t) * D;
        const int64_t off = b * p.kv_stride[0] + h * p.kv_stride[1] + t * p.kv_stride[2];
        for (int d = 0; d < D; ++d) {
          store_element(p.dk, off + d, dk[a + d], p.dtype);
          store_element(p.dv, off + d, dv[a + d], p.dtype);
        }
      }
    }
  }
  return Status::kOk;
}

}  // namespace gsa::kernels
