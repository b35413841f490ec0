// gsa bench train's building blocks and its report, each against an independent oracle on the CPU:
//  - the SDPA dense causal attention against a float64 softmax under the causal mask (GQA);
//  - the attention timer against known work: an attention that sleeps a set time in forward and in backward;
//  - the allowed-pair count against the scalar mask rule over every (query, key) pair, and T(T+1)/2 raw;
//  - a bench run in each mode: its first loss against a plain forward of the initial weights through the attention
//    plan (gsa_attention: the gist mask, selection in GSA mode; the causal mask of a raw layout in dense mode),
//    with whole logits and at::cross_entropy; and its report's arithmetic (tokens/s, breakdown, FLOPs).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <thread>

#include "common/dense_reference.h"
#include "common/model_fixtures.h"
#include "gsa/runtime/attention_mode.h"
#include "gsa/runtime/attention_plan.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/mask_predicate.h"
#include "gsa/runtime/sdpa_attention.h"
#include "gsa/trainer/timed_attention.h"
#include "gsa/trainer/train_bench.h"

namespace gsa {
namespace {

TEST(CausalSdpaAttention, EqualsFloat64CausalSoftmaxWithGqa) {
  at::manual_seed(5);
  const int64_t hq = 4, hkv = 2, t = 13, d = 8;
  const at::Tensor q = at::randn({1, hq, t, d}), k = at::randn({1, hkv, t, d}), v = at::randn({1, hkv, t, d});
  const double scale = 0.3;
  CausalSdpaAttention sdpa;
  const at::Tensor out = sdpa.attend(0, false, q, k, v, scale);  // [1, Hq, T, D]
  const at::Tensor keep = at::ones({t, t}, at::kBool).tril().expand({hkv, t, t});
  const at::Tensor ref = test::dense_attention(q[0].to(at::kDouble), k[0].to(at::kDouble), v[0].to(at::kDouble),
                                               keep, scale);  // [Hq, T, D]
  EXPECT_LT((out[0].to(at::kDouble) - ref).abs().max().item<double>(), 1e-5);
  EXPECT_THROW(sdpa.attend(1, /*layer_selects=*/true, q, k, v, scale), Error);
}

// out = q + mean of k and v over heads (gradients reach q, k and v); sleeps forward_ms in forward and backward_ms
// when the gradient passes an intermediate, i.e. inside the attention's own backward.
class SleepyAttention final : public LayerAttention {
 public:
  SleepyAttention(int forward_ms, int backward_ms) : forward_ms_(forward_ms), backward_ms_(backward_ms) {}
  at::Tensor attend(int64_t, bool, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(forward_ms_));
    at::Tensor mid = (k + v).mean(1, /*keepdim=*/true);  // [B, 1, T, D]
    if (mid.requires_grad()) {
      const int ms = backward_ms_;
      mid.register_hook([ms](const at::Tensor&) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); });
    }
    return q + mid;
  }

 private:
  int forward_ms_, backward_ms_;
};

TEST(TimedAttention, MeasuresForwardAndTheAttentionsOwnBackward) {
  SleepyAttention sleepy(/*forward_ms=*/40, /*backward_ms=*/60);
  TimedAttention timed(sleepy, at::kCPU);
  const at::Tensor q = at::randn({1, 4, 5, 8}).requires_grad_(true);
  const at::Tensor k = at::randn({1, 2, 5, 8}).requires_grad_(true), v = at::randn({1, 2, 5, 8}).requires_grad_(true);
  at::Tensor out = timed.attend(0, false, q * 2, k * 2, v * 2, 1.0);
  const double forward = timed.seconds();
  EXPECT_GE(forward, 0.040);
  EXPECT_LT(forward, 0.040 + 0.030);
  // Work after the attention's backward (a hook on the leaf q) is not attention time.
  q.register_hook([](const at::Tensor&) { std::this_thread::sleep_for(std::chrono::milliseconds(80)); });
  out.sum().backward();
  const double both = timed.seconds();
  EXPECT_GE(both, 0.100);
  EXPECT_LT(both, 0.100 + 0.050);  // neither the 80 ms after it nor anything else
  timed.reset();
  EXPECT_EQ(timed.seconds(), 0.0);
}

TEST(TrainBench, AllowedPairsCountTheMaskRule) {
  GistOptions gist;
  gist.chunk = 4;
  gist.levels = 2;
  gist.fanout = 2;
  Document doc;
  for (int64_t i = 0; i < 45; ++i) doc.context.push_back(i % 200);
  for (int64_t i = 0; i < 6; ++i) doc.suffix.push_back(i);
  const GistLayout gisted = build_layout({doc}, gist);
  int64_t expected = 0;
  for (int64_t q = 0; q < gisted.size(); ++q) {
    for (int64_t k = 0; k <= q; ++k) expected += gist_mask_allowed(gisted, q, k) ? 1 : 0;
  }
  EXPECT_EQ(count_allowed_pairs({gisted, gisted}, at::kCPU), 2 * expected);
  const GistLayout raw = build_layout({mode_document(doc, attention_mode_options(AttentionMode::kFull, {}))}, gist);
  EXPECT_EQ(count_allowed_pairs({raw}, at::kCPU), raw.size() * (raw.size() + 1) / 2);
}

// A tiny model on the CPU in fp32 (tight tolerances); vocab 300 with the gist id 299.
GsaOptions tiny_bench_options() {
  GsaOptions o;
  o.model = test::tiny_model_options();
  o.model.vocab_size = 300;
  o.model.num_layers = 2;
  o.model.gist_token_ids = {299};
  o.gist.chunk = 4;
  o.attention.selection.budget = BudgetKind::kFixed;
  o.attention.selection.fixed_k = 2;
  o.train.activation_checkpointing = true;
  o.train.lr = 1e-3;
  return o;
}

// The mean next-token loss of the initial weights on the run's batch: one plain forward through the attention plan.
double direct_loss(const TrainBench& bench, const GsaOptions& o, BenchAttention mode, const TrainBenchShape& shape) {
  at::NoGradGuard no_grad;
  const LlamaModel model = LlamaModel::from_tensors(o.model, bench.initial_weights(), at::kCPU);
  const TaskBatch batch = train_bench_batch(o, mode, shape, static_cast<uint64_t>(o.train.seed) + 1, at::kCPU);
  const AttentionModeOptions mo = attention_mode_options(
      mode == BenchAttention::kGsa ? AttentionMode::kSelective : AttentionMode::kFull, o);
  std::vector<const GistLayout*> rows;
  for (const GistLayout& l : batch.layouts) rows.push_back(&l);
  const AttentionPlan plan = make_attention_plan(rows, 0, -1, mo.attention, at::kCPU);
  const at::Tensor logits = model.forward(plan.tokens, plan.rope_pos, plan, mo.attention, mo.selective);  // [B, T, V]
  return at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}), batch.labels.reshape({-1}), {},
                                at::Reduction::Mean, -100)
      .item<double>();
}

TEST(TrainBench, FirstLossIsTheInitialModelsAndTheReportAddsUp) {
  const GsaOptions o = tiny_bench_options();
  TrainBench bench(o, at::kCPU);
  TrainBenchShape shape;
  shape.tokens = 90;
  shape.suffix_tokens = 12;
  shape.batch = 2;
  shape.warmup = 1;
  shape.steps = 2;
  shape.loss_chunk = 7;
  for (BenchAttention mode : {BenchAttention::kGsa, BenchAttention::kDense}) {
    SCOPED_TRACE(bench_attention_name(mode));
    const TrainBenchResult r = bench.run(mode, shape);
    const double oracle = direct_loss(bench, o, mode, shape);
    EXPECT_NEAR(r.first_loss, oracle, 1e-5 * oracle);
    EXPECT_TRUE(std::isfinite(r.last_loss));
    EXPECT_NE(r.last_loss, r.first_loss);  // the steps trained
    EXPECT_EQ(r.tokens, 180);
    if (mode == BenchAttention::kDense) {
      EXPECT_EQ(r.positions, 180);
      EXPECT_EQ(r.attention_pairs, 2 * 90 * 91 / 2);
    } else {
      EXPECT_GT(r.positions, 180);  // the gists
      const int64_t row = r.positions / 2;
      EXPECT_LT(r.attention_pairs, 2 * row * (row + 1) / 2);  // fewer than causal over the same positions
    }
    EXPECT_DOUBLE_EQ(r.tokens_per_second, r.tokens / r.step_seconds);
    EXPECT_GT(r.attention_seconds, 0);
    EXPECT_LT(r.attention_seconds, r.step_seconds);
    EXPECT_EQ(r.communication_seconds, 0);
    EXPECT_NEAR(r.attention_seconds + r.communication_seconds + r.other_seconds, r.step_seconds, 1e-12);
    const double matmul = 2 * (32 * 32 + 2 * 16 * 32 + 32 * 32 + 3 * 64 * 32) + 300 * 32;  // layers + lm_head
    EXPECT_EQ(bench.matmul_params(), static_cast<int64_t>(matmul));
    EXPECT_DOUBLE_EQ(r.model_flops, 6 * matmul * r.positions + 12.0 * 4 * 8 * 2 * r.attention_pairs);
    EXPECT_EQ(r.peak_bytes, -1);  // not measured on the CPU
  }
}

}  // namespace
}  // namespace gsa
