#include "common/sparse_attention_check.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <random>

#include "common/dense_reference.h"
#include "common/random_layouts.h"
#include "common/tolerance.h"
#include "gsa/runtime/gist_layout.h"
#include "gsa/runtime/sparse_attention.h"
#include "gsa/runtime/tile_plan.h"

namespace gsa::test {
namespace {

std::vector<GistLayout> random_rows(const SparseCase& c, std::mt19937& rng) {
  GistOptions o;
  o.levels = c.levels;
  o.chunk = c.chunk;
  o.fanout = c.fanout;
  o.sink = c.sink;
  o.prev_chunks = c.prev;
  return random_packed_rows(o, c.max_doc_tokens, rng);
}

// Float64 log-sum-exp of the masked scores per query: [Hq, Tq]; -inf for rows without keys.
at::Tensor dense_lse(const at::Tensor& q, const at::Tensor& k, const at::Tensor& keep, double scale) {
  const int64_t g = q.size(0) / k.size(0);
  at::Tensor kk = k.repeat_interleave(g, 0), mask = keep.repeat_interleave(g, 0);
  at::Tensor scores = at::matmul(q, kk.transpose(-1, -2)) * scale;
  scores = scores.masked_fill(mask.logical_not(), -std::numeric_limits<double>::infinity());
  return at::logsumexp(scores, -1);
}

}  // namespace

void check_sparse_attention(const SparseCase& c, at::Device device, uint64_t seed) {
  std::mt19937 rng(seed);
  at::manual_seed(seed);
  const std::vector<GistLayout> rows = random_rows(c, rng);
  const int64_t T = std::max(rows[0].size(), rows[1].size());
  if (T == 0) return;
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  const auto opts = at::TensorOptions().dtype(c.dtype).device(device);
  at::Tensor q = at::randn({2, c.hq, T, c.head_dim}, opts).requires_grad_();
  at::Tensor k = at::randn({2, c.hkv, T, c.head_dim}, opts).requires_grad_();
  at::Tensor v = at::randn({2, c.hkv, T, c.head_dim}, opts).requires_grad_();
  at::Tensor w = at::randn({2, c.hq, T, c.head_dim}, opts.dtype(at::kDouble).device(at::kCPU));
  at::Tensor u = at::randn({2, c.hq, T}, opts.dtype(at::kDouble).device(at::kCPU));
  auto tiles = std::make_shared<const TilePlan>(make_tile_plan(row_pointers(rows), 0, -1, c.hq / c.hkv, device,
                                                               c.max_backward_tiles));
  SparseAttentionOutput s = sparse_attention(q, k, v, tiles, c.selective, c.keep_gists, scale);
  const at::Tensor finite = at::isfinite(s.lse.detach().cpu());
  at::Tensor loss = (s.out.to(at::kDouble).cpu() * w).sum() +
                    (s.lse.to(at::kDouble).cpu().masked_fill(finite.logical_not(), 0) * u).sum();
  loss.backward();

  const double bound = c.dtype == at::kHalf ? kFp16RelErr : kBf16RelErr;
  at::Tensor qr = q.detach().cpu().to(at::kDouble).requires_grad_();
  at::Tensor kr = k.detach().cpu().to(at::kDouble).requires_grad_();
  at::Tensor vr = v.detach().cpu().to(at::kDouble).requires_grad_();
  at::Tensor ref_loss = at::zeros({}, at::kDouble);
  std::vector<at::Tensor> ref_out, got_out;
  for (int64_t b = 0; b < 2; ++b) {
    const GistLayout& row = rows[b];
    const int64_t tb = row.size();
    if (tb < T) {
      EXPECT_EQ(s.out[b].narrow(1, tb, T - tb).abs().max().item<float>(), 0.f) << "padding queries of row " << b;
    }
    if (tb == 0) continue;
    at::Tensor qb = qr[b].narrow(1, 0, tb), kb = kr[b].narrow(1, 0, tb), vb = vr[b].narrow(1, 0, tb);
    at::Tensor keep = dense_keep_mask(row, 0, tb, qb.detach(), kb.detach(), false, {});  // [Hkv, Tq, T]
    if (c.selective && !c.keep_gists) {
      at::Tensor suffix = at::zeros({tb}, at::kBool), gist = at::zeros({tb}, at::kBool);
      for (int64_t t = 0; t < tb; ++t) {
        suffix[t] = row.suffix[t] != 0;
        gist[t] = row.is_gist(t);
      }
      keep = keep.logical_and(suffix.view({1, tb, 1}).logical_and(gist.view({1, 1, tb})).logical_not());
    }
    at::Tensor out = dense_attention(qb, kb, vb, keep, scale);
    at::Tensor lse = dense_lse(qb, kb, keep, scale);
    const at::Tensor lse_finite = at::isfinite(lse);
    EXPECT_TRUE(at::equal(lse_finite, finite[b].narrow(1, 0, tb))) << "rows without keys differ, row " << b;
    EXPECT_TRUE(all_close(s.lse[b].narrow(1, 0, tb).masked_fill(lse_finite.logical_not().to(s.lse.device()), 0),
                          lse.masked_fill(lse_finite.logical_not(), 0), 2e-2, 2e-3))
        << "lse of row " << b;
    ref_out.push_back(out.detach());
    got_out.push_back(s.out[b].narrow(1, 0, tb).detach());
    ref_loss = ref_loss + (out * w[b].narrow(1, 0, tb)).sum() +
               (lse.masked_fill(lse_finite.logical_not(), 0) * u[b].narrow(1, 0, tb)).sum();
  }
  for (size_t i = 0; i < ref_out.size(); ++i) {
    EXPECT_TRUE(relative_error_below(got_out[i], ref_out[i], bound)) << "out of row " << i;
  }
  ref_loss.backward();
  EXPECT_TRUE(relative_error_below(q.grad(), qr.grad(), bound)) << "dq";
  EXPECT_TRUE(relative_error_below(k.grad(), kr.grad(), bound)) << "dk";
  EXPECT_TRUE(relative_error_below(v.grad(), vr.grad(), bound)) << "dv";
}

}  // namespace gsa::test
