// Efficient GSA attention vs the float64 dense oracle (tests/common/dense_reference.h): outputs and gradients
// on random layouts (1-3 levels, several chunk sizes and fanouts, sinks, prev_chunks, GQA 1 and 4, packed
// documents, word-aware shifts, cpt and selective layers, adaptive and fixed budgets, kept gists), the decode
// query alone, and chunk selection against brute force. Tolerance: kFp32Atol/kFp32Rtol (tests/common).
#include <gtest/gtest.h>

#include <random>
#include <utility>
#include <vector>

#include "common/dense_reference.h"
#include "common/tolerance.h"
#include "gsa/runtime/attention.h"
#include "gsa/runtime/attention_plan.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/selection.h"

namespace gsa {
namespace {

struct Case {
  int64_t levels, chunk, fanout, sink, prev, hq, hkv;
  bool selective, keep_gists, fixed_budget, word_aware;
  int64_t query_block;
};

std::vector<Case> cases() {
  return {
      {1, 4, 2, 3, 1, 4, 4, false, false, false, false, 0}, {1, 4, 2, 3, 1, 4, 1, true, false, false, false, 0},
      {1, 3, 2, 0, 0, 4, 1, true, false, true, true, 5},    {1, 2, 2, 2, 2, 4, 4, true, true, false, false, 0},
      {2, 2, 2, 1, 1, 4, 1, false, false, false, false, 0}, {2, 3, 2, 3, 1, 4, 1, true, false, false, true, 7},
      {2, 2, 3, 2, 1, 4, 4, true, false, true, false, 0},   {2, 4, 2, 3, 0, 4, 1, true, true, true, false, 3},
      {3, 2, 2, 1, 1, 4, 1, false, false, false, false, 0}, {3, 1, 2, 2, 1, 4, 1, true, false, true, false, 0},
      {3, 2, 2, 3, 2, 4, 4, true, false, false, true, 0},   {4, 1, 2, 1, 1, 4, 1, true, false, true, false, 0},
  };
}

struct Batch {
  std::vector<GistLayout> rows;
  std::vector<const GistLayout*> ptrs() const { return row_pointers(rows); }
};

Batch random_batch(const Case& c, std::mt19937& rng) {
  GistOptions o;
  o.levels = c.levels;
  o.chunk = c.chunk;
  o.fanout = c.fanout;
  o.sink = c.sink;
  o.prev_chunks = c.prev;
  o.word_aware = c.word_aware;
  Batch batch;
  for (int b = 0; b < 2; ++b) {
    std::vector<Document> docs;
    for (int d = 0, n = 1 + rng() % 3; d < n; ++d) {
      Document doc;
      const int64_t len = rng() % 48;
      for (int64_t i = 0; i < len; ++i) {
        doc.context.push_back(rng() % 256);
        doc.context_word_starts.push_back(rng() % 3 == 0);
      }
      for (int64_t i = 0, n2 = rng() % 6; i < n2; ++i) doc.suffix.push_back(rng() % 256);
      docs.push_back(doc);
    }
    batch.rows.push_back(build_layout(docs, o));
  }
  return batch;
}

SelectionOptions selection_options(const Case& c) {
  SelectionOptions s;
  s.keep_unselected_gists = c.keep_gists;
  s.budget = c.fixed_budget ? BudgetKind::kFixed : BudgetKind::kAdaptive;
  s.fixed_k = 2;
  return s;
}

class AttentionVsDense : public ::testing::TestWithParam<int> {};

TEST_P(AttentionVsDense, OutputsAndGradientsMatchFloat64Oracle) {
  const Case c = cases()[GetParam()];
  for (const at::Device device : test::test_devices()) {
    std::mt19937 rng(100 + GetParam());
    at::manual_seed(GetParam());
    Batch batch = random_batch(c, rng);
    const int64_t T = std::max(batch.rows[0].size(), batch.rows[1].size());
    const int64_t D = 8;
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));
    auto fp32 = at::TensorOptions().dtype(at::kFloat).device(device);
    at::Tensor q = at::randn({2, c.hq, T, D}, fp32).requires_grad_();
    at::Tensor k = at::randn({2, c.hkv, T, D}, fp32).requires_grad_();
    at::Tensor v = at::randn({2, c.hkv, T, D}, fp32).requires_grad_();
    at::Tensor w = at::randn({2, c.hq, T, D}, fp32);
    AttentionOptions options;
    options.query_block = c.query_block;
    options.selection = selection_options(c);
    AttentionPlan plan = make_attention_plan(batch.ptrs(), 0, -1, options, device);
    at::Tensor out = gsa_attention(q, k, v, plan, c.selective, options.selection, scale);
    (out * w).sum().backward();

    at::Tensor qr = q.detach().cpu().requires_grad_(), kr = k.detach().cpu().requires_grad_();
    at::Tensor vr = v.detach().cpu().requires_grad_();
    at::Tensor loss = at::zeros({}, at::kDouble);
    for (int64_t b = 0; b < 2; ++b) {
      const GistLayout& row = batch.rows[b];
      const int64_t tb = row.size();
      if (tb == 0) continue;
      at::Tensor qb = qr[b].narrow(1, 0, tb), kb = kr[b].narrow(1, 0, tb), vb = vr[b].narrow(1, 0, tb);
      at::Tensor keep = test::dense_keep_mask(row, 0, tb, qb.detach(), kb.detach(), c.selective, options.selection);
      at::Tensor ref = test::dense_attention(qb, kb, vb, keep, scale);
      GSA_EXPECT_CLOSE(out[b].narrow(1, 0, tb), ref, test::kFp32Atol, test::kFp32Rtol) << "row " << b;
      if (tb < T) {
        EXPECT_EQ(out[b].narrow(1, tb, T - tb).abs().max().item<float>(), 0.f) << "padding queries";
      }
      loss = loss + (ref * w[b].narrow(1, 0, tb).cpu().to(at::kDouble)).sum();
    }
    loss.backward();
    GSA_EXPECT_CLOSE(q.grad(), qr.grad(), test::kFp32Atol * 10, test::kFp32Rtol * 10) << "dq on " << device;
    GSA_EXPECT_CLOSE(k.grad(), kr.grad(), test::kFp32Atol * 10, test::kFp32Rtol * 10) << "dk on " << device;
    GSA_EXPECT_CLOSE(v.grad(), vr.grad(), test::kFp32Atol * 10, test::kFp32Rtol * 10) << "dv on " << device;
  }
}

INSTANTIATE_TEST_SUITE_P(RandomLayouts, AttentionVsDense, ::testing::Range(0, static_cast<int>(cases().size())));

TEST(AttentionDecode, LastQueryAloneEqualsFullRecomputeRow) {
  for (const at::Device device : test::test_devices()) {
    for (int ci : {1, 5, 9}) {
      const Case c = cases()[ci];
      std::mt19937 rng(5 + ci);
      Batch batch = random_batch(c, rng);
      GistLayout& row = batch.rows[0];
      for (int i = 0; i < 3; ++i) row.append_raw(42);
      const int64_t T = row.size(), D = 8;
      auto fp32 = at::TensorOptions().dtype(at::kFloat).device(device);
      at::Tensor q = at::randn({1, c.hq, T, D}, fp32), k = at::randn({1, c.hkv, T, D}, fp32);
      at::Tensor v = at::randn({1, c.hkv, T, D}, fp32);
      AttentionOptions options;
      options.selection = selection_options(c);
      AttentionPlan full = make_attention_plan({&row}, 0, -1, options, device);
      AttentionPlan step = make_attention_plan({&row}, T - 1, 1, options, device);
      at::Tensor all = gsa_attention(q, k, v, full, true, options.selection, 0.3);
      at::Tensor last = gsa_attention(q.narrow(2, T - 1, 1), k, v, step, true, options.selection, 0.3);
      GSA_EXPECT_CLOSE(last, all.narrow(2, T - 1, 1), 1e-6, 1e-5) << "case " << ci;
    }
  }
}

// Selection on every device and backend (LibTorch ops in fp32, D 8; the selection kernels in bf16, D 64: their CPU
// twin, and on a device the CUDA kernels) over the random layouts of cases(), q [2, Hq, T, D] and k [2, Hkv, T, D]
// from draw(shape, options) (layouts from std::mt19937(layout_seed + case), tensors after
// at::manual_seed(tensor_seed + case)), expected to equal the brute force as sets per level. Returns how many
// (query, group, level) choices it compared, and in how many the brute force with the opposite tie rule differs.
template <typename Draw>
std::pair<int64_t, int64_t> expect_selection_equals_brute_force(uint32_t layout_seed, uint64_t tensor_seed,
                                                                Draw draw) {
  int64_t checked = 0, decided_by_ties = 0;
  for (const at::Device device : test::test_devices()) {
    for (const bool kernels : {false, true}) {
      for (int ci = 0; ci < static_cast<int>(cases().size()); ++ci) {
        const Case c = cases()[ci];
        std::mt19937 rng(layout_seed + ci);
        Batch batch = random_batch(c, rng);
        const int64_t T = std::max(batch.rows[0].size(), batch.rows[1].size()), D = kernels ? 64 : 8;
        at::manual_seed(tensor_seed + ci);
        const auto opts = at::TensorOptions().dtype(kernels ? at::kBFloat16 : at::kFloat).device(device);
        const at::Tensor q = draw({2, c.hq, T, D}, opts), k = draw({2, c.hkv, T, D}, opts);
        AttentionOptions options;
        options.backend = kernels ? AttentionBackend::kKernels : AttentionBackend::kReference;
        options.selection = selection_options(c);
        const AttentionPlan plan = make_attention_plan(batch.ptrs(), 0, -1, options, device);
        const SelectionPlan& sel = plan.selection;
        if (sel.count == 0) continue;
        const ChunkSelection chosen =
            select_chunks(q.index({sel.row, at::indexing::Slice(), sel.pos}), k, plan, options.selection);
        const at::Tensor rows = sel.row.cpu(), pos = sel.pos.cpu();
        for (int64_t i = 0; i < sel.count; ++i) {
          const int64_t b = rows[i].item<int64_t>(), p = pos[i].item<int64_t>();
          for (int64_t h = 0; h < c.hkv; ++h) {
            const at::Tensor qp = q[b].select(1, p);
            const auto expected = test::brute_force_selection(batch.rows[b], p, qp, k[b], h, options.selection);
            const auto other = test::brute_force_selection(batch.rows[b], p, qp, k[b], h, options.selection, true);
            for (int64_t l = 0; l < c.levels; ++l) {
              std::set<int64_t> got;
              const at::Tensor ids = chosen.selected[l][i][h].cpu();
              for (int64_t j = 0; j < ids.numel(); ++j)
                if (ids[j].item<int64_t>() >= 0) got.insert(ids[j].item<int64_t>());
              EXPECT_EQ(got, expected[l]) << "case " << ci << " query " << p << " group " << h << " level " << l
                                          << (kernels ? " kernels" : " reference") << " on " << device;
              decided_by_ties += expected[l] != other[l];
              ++checked;
            }
          }
        }
      }
    }
  }
  return {checked, decided_by_ties};
}

// Selection equals the brute force over normal queries and keys.
TEST(Selection, EqualsBruteForceOnRandomLayouts) {
  const auto [checked, decided_by_ties] = expect_selection_equals_brute_force(
      900, 0, [](at::IntArrayRef shape, const at::TensorOptions& opts) { return at::randn(shape, opts); });
  EXPECT_GT(checked, 100);
}

// Equal scores go to the lower gist on every backend: queries and keys of -1, 0 and 1 (every dot exact in fp32 and
// bf16, and many equal) leave the choice at each level's kk-th score to the tie rule, which the brute force states
// (the lower gist first); the reference backend, the kernels' CPU twin and, on a device, the CUDA kernels choose its
// sets exactly. Not vacuous: the brute force with the opposite rule chooses other sets in many of the cases.
TEST(Selection, EqualScoresGoToTheLowerGistOnEveryBackend) {
  const auto [checked, decided_by_ties] = expect_selection_equals_brute_force(
      1900, 100, [](at::IntArrayRef shape, const at::TensorOptions& opts) { return at::randint(-1, 2, shape, opts); });
  EXPECT_GT(decided_by_ties, checked / 10) << "of " << checked << " (query, group, level) choices";
}

// Reference masks built per run of queries (AttentionOptions::reference_chunk_queries, bounded memory for long
// prefills) give the same outputs, gradients and remote selections as masks built for all queries at once: every
// case of the table, runs of 7 queries (not a multiple of any block), and a key view that holds only the even
// positions so half of the selected keys go to `remote` (selection scores every gist, as from sequence
// parallelism's replicated gist tree: gists missing from the view would tie and make the choice arbitrary).
TEST(Attention, ReferenceRunsOfQueriesEqualOneRun) {
  for (size_t ci = 0; ci < cases().size(); ++ci) {
    const Case c = cases()[ci];
    std::mt19937 rng(300 + ci);
    at::manual_seed(ci);
    Batch batch = random_batch(c, rng);
    const int64_t T = std::max(batch.rows[0].size(), batch.rows[1].size()), D = 8;
    at::Tensor q = at::randn({2, c.hq, T, D}).requires_grad_(), k = at::randn({2, c.hkv, T, D}).requires_grad_();
    at::Tensor v = at::randn({2, c.hkv, T, D}).requires_grad_();
    at::Tensor slot = at::arange(T).view({1, T}).expand({2, T}).clone();
    slot.masked_fill_(slot.remainder(2) == 1, -1);
    AttentionOptions whole, runs;
    whole.query_block = runs.query_block = c.query_block;
    whole.selection = runs.selection = selection_options(c);
    whole.backend = runs.backend = AttentionBackend::kReference;
    runs.reference_chunk_queries = 7;
    const AttentionPlan a = make_attention_plan(batch.ptrs(), 0, -1, whole, at::kCPU);
    const AttentionPlan b = make_attention_plan(batch.ptrs(), 0, -1, runs, at::kCPU);
    ASSERT_TRUE(a.band.defined());
    ASSERT_FALSE(b.band.defined()) << "case " << ci << ": runs of 7 queries must not build the masks up front";
    std::vector<at::Tensor> grads;
    for (const AttentionPlan* plan : {&a, &b}) {
      RemoteSelection remote;
      // Selection reads every gist (as sequence parallelism does from the replicated gist tree); attention and
      // the remote split use the partial view.
      const KeyView all{k, v, {}};
      const PartialAttention out =
          gsa_attention_partial(q, KeyView{k, v, slot}, *plan, c.selective, whole.selection, 0.3, &all, &remote);
      const at::Tensor finite = at::isfinite(out.lse);
      (out.out.sum() + out.lse.masked_fill(finite.logical_not(), 0).sum()).backward();
      grads.push_back(out.out.detach());
      grads.push_back(out.lse.masked_fill(finite.logical_not(), 0).detach());
      for (at::Tensor* t : {&q, &k, &v}) {
        grads.push_back(t->grad().clone());
        t->mutable_grad().zero_();
      }
      grads.push_back(remote.q.defined() ? remote.q.detach() : at::zeros({1}));
      grads.push_back(remote.key_pos.defined() ? remote.key_pos : at::zeros({1}, at::kLong));
    }
    const size_t half = grads.size() / 2;
    for (size_t i = 0; i < half; ++i) {
      if (i + 1 == half) {  // remote key positions: equal as sets per query (widths may differ by padding)
        at::Tensor x = grads[i], y = grads[half + i];
        const int64_t w = std::max(x.size(-1), y.size(-1));
        x = std::get<0>(at::constant_pad_nd(x, {0, w - x.size(-1)}, -1).sort(-1));
        y = std::get<0>(at::constant_pad_nd(y, {0, w - y.size(-1)}, -1).sort(-1));
        EXPECT_TRUE(at::equal(x, y)) << "case " << ci << ": remote key positions";
        continue;
      }
      GSA_EXPECT_CLOSE(grads[half + i], grads[i], test::kFp32Atol, test::kFp32Rtol) << "case " << ci << " item " << i;
    }
  }
}

TEST(Selection, AdaptiveTopKOnKnownValues) {
  // Method section 8: Qwen2-7B chunk16, Lk = 32768, Gq = 7 -> floor(floor(2048 / 7) / 16) + 1 = 19.
  EXPECT_EQ(adaptive_top_k(32768, 16, 7, 16), 19);
  // Llama-3.2-1B (Gq = 4) chunk4-chunk4 (r = 16), Lk = 4096: floor(floor(256 / 4) / 4) + 1 = 17.
  EXPECT_EQ(adaptive_top_k(4096, 16, 4, 4), 17);
  EXPECT_EQ(adaptive_top_k(10, 16, 4, 4), 1);  // short contexts still select one chunk
  GistOptions two;
  two.levels = 2;
  two.chunk = 8;
  two.fanout = 4;
  EXPECT_EQ(compression_ratio(two), 32);
  two.levels = 3;
  EXPECT_EQ(compression_ratio(two), 128);
}

// A decode step has the kernels write their list into the tail of a wider one (select_chunks_rows's
// key_pos_out): the tail must equal the list they return on their own, the head must stay as it was; a view
// of the wrong shape is an error naming it. On the CPU twin and, with a device, the kernels.
// One row of 300 random context bytes and a 2-token suffix, two levels (chunk 4, fanout 2, sink 1): the last
// query selects.
GistLayout two_level_selection_row(const GistOptions& gist, uint32_t seed) {
  Document doc;
  std::mt19937 rng(seed);
  for (int64_t i = 0; i < 300; ++i) doc.context.push_back(rng() % 256);
  doc.suffix = {1, 2};
  return build_layout({doc}, gist);
}

GistOptions two_level_gists() {
  GistOptions gist;
  gist.chunk = 4;
  gist.levels = 2;
  gist.fanout = 2;
  gist.sink = 1;
  return gist;
}

// The last position's query of q_all [1, Hq, T, D] as the selection kernels take it: [1, Hq, D] on `device`.
at::Tensor last_query(const at::Tensor& q_all, const at::Device& device) {
  const int64_t T = q_all.size(2);
  return q_all.narrow(2, T - 1, 1).permute({0, 2, 1, 3}).reshape({1, q_all.size(1), q_all.size(3)}).to(device);
}

TEST(Selection, KernelsWriteIntoTheTailOfAWiderList) {
  const GistOptions gist = two_level_gists();
  const GistLayout row = two_level_selection_row(gist, 5);
  const int64_t T = row.size(), D = 64, hq = 4, hkv = 2;
  at::manual_seed(9);
  const at::Tensor q_all = at::randn({1, hq, T, D}, at::kBFloat16), k_all = at::randn({1, hkv, T, D}, at::kBFloat16);
  AttentionOptions options;
  options.backend = AttentionBackend::kKernels;
  for (const at::Device device : test::test_devices()) {
    SCOPED_TRACE(str_cat(device));
    const AttentionPlan plan = make_attention_plan({&row}, T - 1, 1, options, device);
    ASSERT_EQ(plan.selection.count, 1);
    const at::Tensor q = last_query(q_all, device);
    const at::Tensor k = k_all.to(device);
    kernels::KvRows rows;
    rows.base = k.data_ptr();
    rows.stride_b = k.stride(0);
    rows.stride_h = k.stride(1);
    rows.row_stride = k.stride(2);
    const at::Tensor alone =
        select_chunks_rows(q, rows, hkv, plan.selection, gist, options.selection).key_pos.cpu();
    const int64_t S = selection_key_slots(hq, hkv, plan.selection, gist, options.selection), R = 5;
    ASSERT_EQ(alone.size(2), S);
    const at::Tensor wide = at::full({1, hkv, R + S}, 12345, at::TensorOptions().dtype(at::kInt).device(device));
    select_chunks_rows(q, rows, hkv, plan.selection, gist, options.selection, at::Tensor(), wide.narrow(2, R, S));
    EXPECT_TRUE(at::equal(wide.narrow(2, R, S).cpu(), alone));
    EXPECT_TRUE(at::equal(wide.narrow(2, 0, R).cpu(), at::full({1, hkv, R}, 12345, at::kInt)));
    try {
      select_chunks_rows(q, rows, hkv, plan.selection, gist, options.selection, at::Tensor(), wide.narrow(2, 0, S - 1));
      ADD_FAILURE() << "a key_pos_out one column short was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("key_pos_out"), std::string::npos) << e.what();
    }
  }
}

// Keys held in other columns than their positions (a sequence-parallel rank's replicated gist tree): the kernels
// read row key_slot[b, pos] of a compact key tensor and choose what they choose over the full keys by position,
// as the LibTorch path does with the same table. On the CPU twin and, with a device, the kernels.
TEST(Selection, KernelsReadKeysThroughAKeySlotTable) {
  const GistOptions gist = two_level_gists();
  const GistLayout row = two_level_selection_row(gist, 7);
  const int64_t T = row.size(), D = 64, hq = 4, hkv = 2;
  at::manual_seed(11);
  const at::Tensor q_all = at::randn({1, hq, T, D}, at::kBFloat16), k_all = at::randn({1, hkv, T, D}, at::kBFloat16);
  // The compact keys: the gists (every level) and sinks, in reverse order, so no slot equals its position.
  std::vector<int64_t> held;
  for (int64_t pos = 0; pos < T; ++pos) {
    if (row.is_gist(pos) || row.sink[pos] != 0) held.push_back(pos);
  }
  std::reverse(held.begin(), held.end());
  std::vector<int64_t> slot(T, -1);
  for (size_t i = 0; i < held.size(); ++i) slot[held[i]] = static_cast<int64_t>(i);
  const at::Tensor compact = k_all.index_select(2, at::tensor(held, at::kLong)).contiguous();  // [1, Hkv, W, D]
  const at::Tensor key_slot = at::tensor(slot, at::kLong).view({1, T});
  AttentionOptions options;
  options.backend = AttentionBackend::kKernels;
  for (const at::Device device : test::test_devices()) {
    SCOPED_TRACE(str_cat(device));
    const AttentionPlan plan = make_attention_plan({&row}, T - 1, 1, options, device);
    ASSERT_EQ(plan.selection.count, 1);
    const at::Tensor q = last_query(q_all, device);
    const ChunkSelection by_position =
        select_chunks(q, k_all.to(device), plan.selection, gist, options.selection, at::Tensor(),
                      AttentionBackend::kKernels);
    const ChunkSelection by_slot = select_chunks(q, compact.to(device), plan.selection, gist, options.selection,
                                                 key_slot.to(device), AttentionBackend::kKernels);
    const ChunkSelection libtorch = select_chunks(q, compact.to(device), plan.selection, gist, options.selection,
                                                  key_slot.to(device), AttentionBackend::kReference);
    EXPECT_TRUE(at::equal(by_slot.key_pos.cpu(), by_position.key_pos.cpu()));
    // The LibTorch path lists the same rows in another order.
    for (int64_t h = 0; h < hkv; ++h) {
      auto sorted = [&](const at::Tensor& t) { return std::get<0>(at::sort(t[0][h].cpu())); };
      const at::Tensor a = sorted(by_slot.key_pos), b = sorted(libtorch.key_pos);
      EXPECT_TRUE(at::equal(a.masked_select(a >= 0), b.masked_select(b >= 0))) << "kv head " << h;
    }
    const at::Tensor wide = at::empty({1, hkv, 3 + by_slot.key_pos.size(2)}, by_slot.key_pos.options().dtype(at::kInt));
    select_chunks_into(q, compact.to(device), plan.selection, gist, options.selection, key_slot.to(device),
                       at::Tensor(), wide.narrow(2, 3, by_slot.key_pos.size(2)));
    EXPECT_TRUE(at::equal(wide.narrow(2, 3, by_slot.key_pos.size(2)).cpu().to(at::kLong), by_slot.key_pos.cpu()));
  }
}

}  // namespace
}  // namespace gsa

namespace gsa {
namespace {

// The selection kernels on long levels choose the same gists as their CPU twin, one query over 327,680 tokens
// (chunk 8): with one level, the two-stage top-k of a long top level (chunk_selection.h: slices of ~8K
// candidates per head, then one select over their survivors; what a decode step at 1M tokens runs) over 40,960
// gists (5 slices); with three levels (fanout 4), thousands of candidates per head below the top (score tiles
// of many CTAs, top-k from shared memory at level 1 and from global memory at level 0) and a union over 1,280
// bitmap words (union_kernel, a CTA a level; the descent kernel's CTA with GSA_UNION_SPLIT=0); with three levels
// of fanout 8, a top level of 640 gists a head (more than 256 and at most 1,024: the size of a 128K-token decode
// step's top level, 1,024, which one top_k_kernel CTA selects). Adaptive and a large fixed budget.
TEST(Selection, KernelsOnLongLevelsEqualTheCpuTwin) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  // (levels, fanout): 40,960 chunks of 8 in one, three and two levels, and three of fanout 8.
  for (const auto& [levels, fanout] : std::vector<std::pair<int64_t, int64_t>>{{1, 4}, {3, 4}, {2, 8}, {3, 8}}) {
    GistOptions gist;
    gist.chunk = 8;
    gist.levels = levels;
    gist.fanout = fanout;
    gist.sink = 3;
    Document doc;
    std::mt19937 rng(77);
    for (int64_t i = 0; i < 40960 * 8; ++i) doc.context.push_back(rng() % 256);
    doc.suffix = {1, 2, 3};
    const GistLayout row = build_layout({doc}, gist);
    // Head dim 64 in bf16 everywhere; the three levels of fanout 8 (whose fixed budget of 64 runs the joined top
    // level) also at head dim 128 in fp16: level_select_kernel's tensor-core dots in their other shapes.
    std::vector<std::pair<int64_t, at::ScalarType>> shapes{{64, at::kBFloat16}};
    if (levels == 3 && fanout == 8) shapes.emplace_back(128, at::kHalf);
    for (const auto& [D, dtype] : shapes) {
      const int64_t T = row.size(), hq = 8, hkv = 2;
      at::manual_seed(3);
      const at::Tensor q = at::randn({1, hq, T, D}, dtype), k = at::randn({1, hkv, T, D}, dtype);
      // Three levels, fixed_k 0: the adaptive budget (81 gists a head, 324 candidates per head below the top: 1,296
      // pairs a KV head, over the descent kernel's 1,024, so level_select_kernel); 1,100: 4,400 candidates per head at
      // level 0 (score_kernel and top_k_kernel per level); 300: 1,200 a level below the top (level_select_kernel; with
      // GSA_LEVEL_SELECT=0 score_kernel and the radix select, more than a top_k_kernel CTA's threads); 64: 256 (4 x 256
      // pairs a KV head, over kHeadCtaMinPairs: level_select_kernel's CTA a head, chunk_selection.cu). Two levels of
      // fanout 8: 5,120 top-level candidates (the radix select from shared memory, up to 8,192) and, adaptive, 161 x 8
      // = 1,288 at level 0. Three levels of fanout 4, fixed_k 40: 160 candidates a head below the top
      // (level_select_kernel, each head's select in its first warp: warp_top_k; with GSA_SELECT_RANK=1 or 2 by all the
      // CTA's threads ranking the candidates, two a candidate: rank_top_k). Fixed_k 16: three levels of fanout 8, 128
      // a head below a top level of 640 (512 pairs a KV head, over kHeadCtaMinPairs: the levels below and the top
      // level joined in one level_select_kernel launch; rank_top_k: four threads a candidate). Fixed_k 8, three
      // levels of fanout 4: 32 a head below the top (128 pairs: the fused descent kernel's levels, after score_kernel
      // and top_k_kernel's top level).
      for (const int64_t fixed_k : {0, 1100, 300, 64, 40, 16, 8}) {
        const bool fixed = fixed_k > 0;
        SCOPED_TRACE(str_cat(levels, " levels of fanout ", fanout, ", fixed_k ", fixed_k, ", head dim ", D));
        AttentionOptions options;
        options.backend = AttentionBackend::kKernels;
        options.selection.budget = fixed ? BudgetKind::kFixed : BudgetKind::kAdaptive;
        options.selection.fixed_k = fixed_k;
        std::vector<std::vector<at::Tensor>> chosen;
        std::vector<at::Tensor> key_pos;  // [1, Hkv, slots] each: the rows the decode kernel reads
        for (const at::Device device : {at::Device(at::kCPU), at::Device(at::kCUDA)}) {
          const AttentionPlan plan = make_attention_plan({&row}, T - 1, 1, options, device);
          ASSERT_EQ(plan.selection.count, 1);
          const at::Tensor q_sel = last_query(q, device);
          const ChunkSelection picked = select_chunks(q_sel, k.to(device), plan, options.selection);
          chosen.push_back(picked.selected);
          key_pos.push_back(picked.key_pos.cpu());
        }
        for (size_t l = 0; l < chosen[0].size(); ++l) {
          const at::Tensor cpu = std::get<0>(chosen[0][l].cpu().sort(-1)),
                           gpu = std::get<0>(chosen[1][l].cpu().sort(-1));
          const int64_t least = fixed ? std::min<int64_t>(100, 4 * fixed_k) : 100;  // not a vacuous comparison
          EXPECT_GT((cpu >= 0).sum().item<int64_t>(), least) << "level " << l << (fixed ? " fixed" : " adaptive");
          EXPECT_TRUE(at::equal(cpu, gpu)) << "level " << l << (fixed ? " fixed" : " adaptive");
        }
        // The unfold lists (the union's and the unfold's kernels: in the descent CTA up to its list capacity, else
        // union_kernel and unfold_kernel) list the same rows, each KV head's in any order.
        ASSERT_EQ(key_pos[0].sizes(), key_pos[1].sizes());
        const at::Tensor cpu_rows = std::get<0>(key_pos[0].sort(-1)), gpu_rows = std::get<0>(key_pos[1].sort(-1));
        EXPECT_GT((cpu_rows >= 0).sum().item<int64_t>(), 100);
        EXPECT_TRUE(at::equal(cpu_rows, gpu_rows)) << "unfold list, " << key_pos[0].size(2) << " slots";
      }
    }
  }
}

}  // namespace
}  // namespace gsa
