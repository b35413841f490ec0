// bf16 training with fp32 master weights (train.master_weights = FLOAT32 with model.dtype = BFLOAT16), on the CPU:
//  (b) the reason for masters, against a float64 AdamW oracle: updates far below bf16's resolution at the weight
//      accumulate in the master and move the bf16 weight after a few steps; pure bf16 AdamW never moves it;
//  (a) a tiny model trained 20 steps in bf16 with fp32 masters tracks the same run in fp32;
//  (c) resuming a bf16 run from its checkpoint equals the uninterrupted run bit for bit, and the checkpoint holds
//      the fp32 masters (values bf16 cannot represent), not the rounded bf16 parameters.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>

#include "gsa/runtime/checkpoint.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/file_util.h"
#include "gsa/trainer/adamw.h"
#include "gsa/trainer/trainer.h"

namespace gsa {
namespace {

// Float64 AdamW on one scalar weight with a constant gradient: the weight after `steps` steps.
double adamw_oracle(double w, double g, double lr, int steps, const AdamWOptions& o) {
  double m = 0, v = 0;
  for (int t = 1; t <= steps; ++t) {
    m = o.beta1 * m + (1 - o.beta1) * g;
    v = o.beta2 * v + (1 - o.beta2) * g * g;
    const double update = (m / (1 - std::pow(o.beta1, t))) / (std::sqrt(v / (1 - std::pow(o.beta2, t))) + o.eps);
    w -= lr * update;
  }
  return w;
}

// `steps` AdamW steps on a bf16 weight vector of ones with gradient ones: the bf16 weight and the optimizer's weight.
struct Trained {
  at::Tensor weight;  // bf16
  at::Tensor master;  // what AdamW updates: the fp32 master, or the bf16 weight itself
};
Trained train_ones(bool master_weights, double lr, int steps) {
  at::Tensor w = at::ones({8}, at::kBFloat16).requires_grad_(true);
  AdamWOptions o;
  o.master_weights = master_weights;
  AdamW optimizer({{"w", w}}, o);
  for (int i = 0; i < steps; ++i) {
    w.mutable_grad() = at::ones({8}, at::kBFloat16);
    optimizer.step(lr);
  }
  return {w.detach(), optimizer.master_weights().at("w").detach()};
}

TEST(MixedPrecision, MastersAccumulateUpdatesBelowBf16Resolution) {
  const double lr = 1e-3;  // each step moves the weight by ~1e-3; bf16's spacing just below 1.0 is 2^-8 = 3.9e-3
  const int steps = 20;
  const double oracle = adamw_oracle(1.0, 1.0, lr, steps, AdamWOptions{});
  const Trained mixed = train_ones(/*master_weights=*/true, lr, steps);
  EXPECT_EQ(mixed.master.scalar_type(), at::kFloat);
  EXPECT_LT((mixed.master.to(at::kDouble) - oracle).abs().max().item<double>(), 1e-6) << "oracle " << oracle;
  // The bf16 weight is the master rounded to bf16: it moved by several bf16 steps.
  EXPECT_TRUE(at::equal(mixed.weight, mixed.master.to(at::kBFloat16)));
  EXPECT_LT(mixed.weight.to(at::kDouble).max().item<double>(), 1.0 - 4 * std::ldexp(1.0, -8));
  // Pure bf16: every update (lr * ~1) rounds away at 1.0, the weight never moves.
  const Trained pure = train_ones(/*master_weights=*/false, lr, steps);
  EXPECT_EQ(pure.master.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(at::equal(pure.weight, at::ones({8}, at::kBFloat16)));
}

TEST(MixedPrecision, MasterWeightsRoundTripAndNameMismatchesAreErrors) {
  at::Tensor w = at::ones({3}, at::kBFloat16).requires_grad_(true);
  AdamW optimizer({{"w", w}}, AdamWOptions{});
  const at::Tensor value = at::tensor({0.1f, 0.2f, 1.0f + 1e-3f});
  optimizer.load_master_weights({{"w", value}});
  EXPECT_TRUE(at::equal(optimizer.master_weights().at("w"), value));  // exact fp32, not rounded
  EXPECT_TRUE(at::equal(w.detach(), value.to(at::kBFloat16)));
  EXPECT_THROW(optimizer.load_master_weights({{"v", value}}), Error);
  EXPECT_THROW(optimizer.load_master_weights({{"w", at::zeros({4})}}), Error);
}

GsaOptions tiny_run(DType dtype, int64_t steps, const std::string& output_dir) {
  GsaOptions o;
  o.model.dtype = dtype;
  o.train.master_weights = DType::kFloat32;
  o.train.steps = steps;
  o.train.batch_size = 4;
  o.train.warmup_steps = 3;
  o.train.log_every = 1;
  o.train.eval_batches = 1;
  o.train.output_dir = output_dir;
  o.train.keep_checkpoints = 0;
  return o;
}

std::vector<std::string> logged_losses(const std::string& output_dir) {
  std::ifstream in(join_path(output_dir, "metrics.jsonl"));
  std::vector<std::string> out;
  const std::regex loss("\"loss\":([^,}]*)");
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_search(line, m, loss)) out.push_back(m[1]);
  }
  return out;
}

// A fresh directory per test case (ctest runs cases as separate processes, possibly in parallel).
class MixedPrecisionRun : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = std::string(GSA_BINARY_DIR) + "/test_tmp/mixed_precision/" + info->name();
    remove_tree(root_);
    make_directories(root_);
  }
  void TearDown() override { remove_tree(root_); }
  std::string dir(const std::string& name) const { return join_path(root_, name); }
  std::string root_;
};

TEST_F(MixedPrecisionRun, Bf16WithMastersTracksFp32) {
  std::ostringstream quiet;
  Trainer(tiny_run(DType::kFloat32, 20, dir("fp32")), at::kCPU).run(quiet);
  Trainer(tiny_run(DType::kBFloat16, 20, dir("bf16")), at::kCPU).run(quiet);
  const std::vector<std::string> fp32 = logged_losses(dir("fp32")), bf16 = logged_losses(dir("bf16"));
  ASSERT_EQ(fp32.size(), 20u);
  ASSERT_EQ(bf16.size(), 20u);
  double worst = 0;
  for (size_t i = 0; i < fp32.size(); ++i) {
    const double a = std::stod(fp32[i]), b = std::stod(bf16[i]);
    worst = std::max(worst, std::abs(a - b) / a);
  }
  std::printf("bf16 + fp32 masters vs fp32, 20 steps: largest relative loss difference %.3g\n", worst);
  // Stated tolerance: every step's loss within 0.5% of the fp32 run's (measured: 0.04%; bf16 keeps 8 significant bits).
  EXPECT_LT(worst, 0.005) << "largest relative loss difference " << worst;
  EXPECT_GT(worst, 0.0) << "the bf16 run cannot equal the fp32 run exactly";
}

TEST_F(MixedPrecisionRun, ResumeFromABf16CheckpointIsExact) {
  std::ostringstream quiet;
  GsaOptions whole = tiny_run(DType::kBFloat16, 6, dir("whole"));
  whole.train.checkpoint_every = 3;
  Trainer(whole, at::kCPU).run(quiet);
  // The step-3 checkpoint of that run, alone in a fresh output dir, resumed to step 6.
  const std::string step3 = CheckpointStore::step_name(3);
  const std::string from = dir("whole") + "/checkpoints/" + step3, to = dir("cut") + "/checkpoints/" + step3;
  make_directories(to);
  for (const std::string& file : list_directory(from)) write_file_atomic(join_path(to, file), read_file(join_path(from, file)));
  write_file_atomic(dir("cut") + "/checkpoints/latest", step3 + "\n");
  GsaOptions cut = whole;
  cut.train.output_dir = dir("cut");
  Trainer resumed(cut, at::kCPU);
  ASSERT_EQ(resumed.resume(), 3);
  resumed.run(quiet);
  const std::vector<std::string> a = logged_losses(dir("whole")), b = logged_losses(dir("cut"));
  ASSERT_EQ(a.size(), 6u);
  ASSERT_EQ(b.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(b[i], a[i + 3]) << "step " << i + 3;
  // The checkpoint holds fp32 masters that bf16 cannot represent, and the model is their rounding.
  const Checkpoint saved = load_checkpoint_dir(dir("whole") + "/checkpoints/" + step3);
  const at::Tensor q = saved.model.at("model.layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(q.scalar_type(), at::kFloat);
  EXPECT_FALSE(at::equal(q, q.to(at::kBFloat16).to(at::kFloat)));
  EXPECT_EQ(resumed.model().parameters().at("model.layers.0.self_attn.q_proj.weight").scalar_type(), at::kBFloat16);
}

}  // namespace
}  // namespace gsa
