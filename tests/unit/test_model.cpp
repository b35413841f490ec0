// Llama model with GSA attention: a decode step equals a full recompute of the last position (every step, cpt
// and selective, 1 and 2 levels), sampling rules (greedy, seeded top-p, gists never generated), weight loading
// errors, vocabulary extension, bf16 against fp32, and gradients through selective training.
#include <gtest/gtest.h>

#include <limits>
#include <memory>
#include <random>
#include <set>

#include "common/model_fixtures.h"
#include "common/tolerance.h"
#include "gsa/kernels/greedy_choice.h"
#include "gsa/runtime/attention_plan.h"
#include "gsa/runtime/decode_plan.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/generation.h"
#include "gsa/runtime/llama_model.h"
#include "gsa/runtime/tokenizer.h"

namespace gsa {
namespace {

GistLayout prompt_layout(int64_t levels, int64_t context, int64_t suffix, uint32_t seed) {
  std::mt19937 rng(seed);
  Document doc;
  for (int64_t i = 0; i < context; ++i) doc.context.push_back(rng() % 256);
  for (int64_t i = 0; i < suffix; ++i) doc.suffix.push_back(rng() % 256);
  GistOptions g;
  g.levels = levels;
  g.chunk = 3;
  g.fanout = 2;
  g.sink = 2;
  return build_layout({doc}, g);
}

TEST(Model, DecodeStepEqualsFullRecompute) {
  for (const at::Device device : test::test_devices()) {
    for (int64_t levels : {1, 2}) {
      for (bool selective : {false, true}) {
        LlamaModel model = LlamaModel::create(test::tiny_model_options(), 11, device);
        AttentionOptions attention;
        attention.selection.enabled = selective;
        Generator gen(model, attention, prompt_layout(levels, 60, 4, 3), 128);
        at::Tensor logits = gen.prefill();
        GSA_EXPECT_CLOSE(logits, test::full_recompute_last(model, gen.layout(), attention), 1e-5, 1e-4);
        for (int step = 0; step < 6; ++step) {
          const int64_t token = logits.argmax().item<int64_t>() % 256;
          logits = gen.step(token);
          GSA_EXPECT_CLOSE(logits, test::full_recompute_last(model, gen.layout(), attention), 1e-5, 1e-4)
              << "levels " << levels << " selective " << selective << " step " << step << " on " << device;
        }
      }
    }
  }
}

TEST(Model, GreedyGenerationIsDeterministicAndNeverEmitsGists) {
  LlamaModel model = LlamaModel::create(test::tiny_model_options(), 5, at::kCPU);
  {  // Make the gist rows of lm_head dominate: greedy decoding must still skip them.
    at::NoGradGuard no_grad;
    at::Tensor head = model.parameters().at("lm_head.weight");
    head.narrow(0, ByteTokenizer::kFirstGist, 1).fill_(3.0);
  }
  AttentionOptions attention;
  SamplingOptions sampling;
  sampling.max_new_tokens = 8;
  Generator a(model, attention, prompt_layout(1, 30, 3, 1), 64);
  Generator b(model, attention, prompt_layout(1, 30, 3, 1), 64);
  std::vector<int64_t> out = a.generate(sampling);
  EXPECT_EQ(out, b.generate(sampling));
  ASSERT_EQ(out.size(), 8u);
  for (int64_t id : out) EXPECT_FALSE(ByteTokenizer::is_gist(id));
}

// Greedy generation ahead of the host (Generator::decode_ahead: each step chooses its token and moves the plan on
// the device; steps queued past the end are dropped) against the plain loop, on every test device (CUDA: the
// captured graph): the same tokens whatever ends the loop (max_new_tokens, a stop token, the positions' limit,
// a vocabulary limit), across the cache's growth at kKvBlockPositions, and the generator left as the plain loop
// leaves it: one more step gives the full recompute's logits.
TEST(Model, GreedyGenerationAheadOfTheHostEqualsThePlainLoop) {
  for (const at::Device device : test::test_devices()) {
    for (bool selective : {false, true}) {
      SCOPED_TRACE(device.str() + (selective ? " selective" : " cpt"));
      LlamaModel model = LlamaModel::create(test::tiny_model_options(), 17, device);
      AttentionOptions attention;
      attention.selection.enabled = selective;
      // 164 context tokens make a layout of ~250 positions: 12 new tokens cross the cache's first block.
      const GistLayout prompt = prompt_layout(2, 164, 4, 9);
      ASSERT_LT(prompt.size(), kKvBlockPositions);
      ASSERT_GT(prompt.size() + 12, kKvBlockPositions);
      auto run = [&](bool ahead, const SamplingOptions& sampling, int64_t max_positions) {
        auto gen = std::make_unique<Generator>(model, attention, prompt, max_positions);
        gen->set_decode_ahead(ahead);
        std::vector<int64_t> streamed;
        GenerationStats stats;
        const std::vector<int64_t> out = gen->generate(sampling, &stats, [&](int64_t id) { streamed.push_back(id); });
        EXPECT_EQ(out, streamed);
        // On CUDA the loop ahead of the host times each step it hands a token from (CUDA events).
        const size_t timed = ahead && device.is_cuda() ? out.size() - 1 : 0;
        EXPECT_EQ(stats.step_gpu_ms.size(), timed);
        EXPECT_EQ(stats.step_idle_ms.size(), timed > 0 ? timed - 1 : 0);
        for (double ms : stats.step_gpu_ms) EXPECT_GT(ms, 0.0);
        for (double ms : stats.step_idle_ms) EXPECT_GE(ms, 0.0);
        return std::make_pair(out, std::move(gen));
      };
      SamplingOptions sampling;
      sampling.max_new_tokens = 12;
      const auto [plain, plain_gen] = run(false, sampling, 512);
      ASSERT_EQ(plain.size(), 12u);
      const auto [ahead, ahead_gen] = run(true, sampling, 512);
      EXPECT_EQ(ahead, plain);
      // Left as the plain loop leaves it: the same layout, and the next step's logits are the full recompute's.
      EXPECT_EQ(ahead_gen->layout().tokens, plain_gen->layout().tokens);
      const DecodePlan& a = ahead_gen->decode_plan();
      const DecodePlan& b = plain_gen->decode_plan();
      for (const auto& [x, y] : {std::make_pair(a.tokens(), b.tokens()), {a.rope_pos(), b.rope_pos()},
                                 {a.positions(), b.positions()}, {a.generated().end, b.generated().end},
                                 {a.selection().pos, b.selection().pos},
                                 {a.selection().key_length, b.selection().key_length}}) {
        ASSERT_EQ(x.defined(), y.defined());
        if (x.defined()) {
          EXPECT_TRUE(at::equal(x.cpu(), y.cpu())) << x << " vs " << y;
        }
      }
      EXPECT_EQ(a.selection().count, 1);  // the query's document has gists: its tables move too
      const at::Tensor next = ahead_gen->step(plain.back());
      GSA_EXPECT_CLOSE(next, test::full_recompute_last(model, ahead_gen->layout(), attention), 1e-5, 1e-4);
      GSA_EXPECT_CLOSE(next, plain_gen->step(plain.back()), 1e-5, 1e-4);

      SamplingOptions stopping = sampling;  // a stop token the plain loop meets at its 5th token
      stopping.stop_tokens = {plain[4]};
      const auto [plain_stop, unused_plain] = run(false, stopping, 512);
      EXPECT_EQ(run(true, stopping, 512).first, plain_stop);
      EXPECT_LE(plain_stop.size(), 5u);

      const int64_t room = prompt.size() + 3;  // the positions' limit ends the loop first
      const auto [plain_room, unused_room] = run(false, sampling, room);
      EXPECT_EQ(run(true, sampling, room).first, plain_room);
      EXPECT_LT(plain_room.size(), 12u);

      SamplingOptions limited = sampling;  // a vocabulary limit below the plain loop's first choice
      limited.vocab_limit = std::max<int64_t>(1, plain[0]);
      limited.max_new_tokens = 3;
      const auto [plain_limited, unused_limited] = run(false, limited, 512);
      EXPECT_EQ(run(true, limited, 512).first, plain_limited);
      EXPECT_NE(plain_limited[0], plain[0]);
    }
  }
}

TEST(Sampler, TopPAndSeedAreHonoured) {
  at::Tensor logits = at::tensor(std::vector<float>{0.f, 5.f, 4.9f, -2.f, 10.f});
  SamplingOptions s;
  s.temperature = 1.0;
  s.top_p = 0.9;  // token 4 alone holds > 0.9 of the mass
  Sampler top(s, {});
  for (int i = 0; i < 20; ++i) EXPECT_EQ(top.sample(logits), 4);
  Sampler no_four(s, {4});  // forbidden: the mass moves to tokens 1 and 2
  for (int i = 0; i < 20; ++i) {
    const int64_t id = no_four.sample(logits);
    EXPECT_TRUE(id == 1 || id == 2) << id;
  }
  s.top_p = 1.0;
  s.seed = 99;
  Sampler x(s, {}), y(s, {});
  std::vector<int64_t> xs, ys;
  at::Tensor flat = at::zeros({50});
  for (int i = 0; i < 30; ++i) {
    xs.push_back(x.sample(flat));
    ys.push_back(y.sample(flat));
  }
  EXPECT_EQ(xs, ys);
  EXPECT_GT(std::set<int64_t>(xs.begin(), xs.end()).size(), 5u);  // really sampling
}

// Greedy choice (done where the logits are): the forbidden id skipped, the first of equal best ids, NaN refused;
// on CUDA the same ids as on the CPU.
TEST(Sampler, GreedySkipsForbiddenIdsTakesTheFirstTieAndRefusesNaN) {
  const at::Tensor logits = at::tensor(std::vector<float>{1.f, 7.f, 7.f, 3.f, 9.f}).to(at::kBFloat16);
  SamplingOptions greedy;
  std::vector<at::Device> devices = {at::kCPU};
  if (at::hasCUDA()) devices.push_back(at::Device(at::kCUDA, 0));
  for (const at::Device& device : devices) {
    SCOPED_TRACE(device.str());
    const at::Tensor here = logits.to(device);
    EXPECT_EQ(Sampler(greedy, {}).sample(here), 4);
    EXPECT_EQ(Sampler(greedy, {4}).sample(here), 1);
    Sampler twice(greedy, {4});  // the forbidden index follows the logits' device
    EXPECT_EQ(twice.sample(logits), 1);
    EXPECT_EQ(twice.sample(here), 1);
    at::Tensor nan = here.clone();
    nan[3] = std::numeric_limits<float>::quiet_NaN();
    try {
      Sampler(greedy, {}).sample(nan);
      ADD_FAILURE() << "NaN logits were sampled";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("NaN logits"), std::string::npos) << e.what();
    }
  }
}

// The greedy choice (Sampler::greedy_into and the greedy sample() built on it: the greedy_choice kernel on CUDA,
// its CPU twin on the CPU) against LibTorch's argmax of the masked fp32 row: bf16, fp16 and fp32 rows with ties,
// forbidden ids, a vocabulary limit, a row whose best ids are all forbidden, an all -inf row, and NaN (flagged
// where it is allowed, ignored where forbidden).
TEST(Sampler, GreedyIntoEqualsTheMaskedArgmax) {
  std::vector<at::Device> devices = {at::kCPU};
  if (at::hasCUDA()) devices.push_back(at::Device(at::kCUDA, 0));
  for (const at::Device& device : devices) {
    for (const at::ScalarType dtype : {at::kBFloat16, at::kHalf, at::kFloat}) {
      SCOPED_TRACE(device.str() + " " + std::string(c10::toString(dtype)));
      at::manual_seed(5);
      for (int64_t trial = 0; trial < 7; ++trial) {
        // Trial 5: the 1B model's vocabulary; 6: one past the kernel's largest (the LibTorch fallback).
        const int64_t vocab = trial == 5 ? 128259 : trial == 6 ? kernels::kGreedyChoiceMaxVocab + 1 : 300 + 37 * trial;
        // Coarse values: many ties, so the first of equal best ids matters.
        at::Tensor row = at::randint(-4, 5, {vocab}).to(at::kFloat).to(dtype);
        SamplingOptions greedy;
        std::vector<int64_t> forbidden = {3, vocab - 1, vocab + 10};
        if (trial % 2 == 1) greedy.vocab_limit = vocab - 50;
        if (trial == 2) forbidden.push_back(row.to(at::kFloat).argmax().item<int64_t>());
        if (trial == 3) row.fill_(-std::numeric_limits<float>::infinity());
        at::Tensor mask = at::zeros({vocab}, at::kBool);  // the oracle: LibTorch's argmax of the masked row
        for (int64_t id : forbidden) {
          if (id < vocab) mask[id] = true;
        }
        if (greedy.vocab_limit > 0) mask.narrow(0, greedy.vocab_limit, vocab - greedy.vocab_limit).fill_(true);
        const int64_t expected =
            row.to(at::kFloat).masked_fill(mask, -std::numeric_limits<float>::infinity()).argmax().item<int64_t>();
        Sampler sampler(greedy, forbidden);
        const at::Tensor out = at::empty({2}, at::TensorOptions(at::kLong).device(device));
        const at::Tensor here = row.to(device);
        sampler.greedy_into(here, out);
        EXPECT_EQ(out[0].item<int64_t>(), expected) << "trial " << trial;
        EXPECT_EQ(out[1].item<int64_t>(), 0);
        EXPECT_EQ(sampler.sample(here), expected);
        at::Tensor nan_forbidden = here.clone();
        nan_forbidden[3] = std::numeric_limits<float>::quiet_NaN();  // forbidden: no flag, same choice
        sampler.greedy_into(nan_forbidden, out);
        EXPECT_EQ(out[0].item<int64_t>(), expected);
        EXPECT_EQ(out[1].item<int64_t>(), 0);
        at::Tensor nan_allowed = here.clone();
        nan_allowed[7] = std::numeric_limits<float>::quiet_NaN();
        sampler.greedy_into(nan_allowed, out);
        EXPECT_EQ(out[1].item<int64_t>(), 1);
      }
    }
  }
}

// Several greedy samplers (their own forbidden ids and vocabulary limits) at once give what each gives alone.
TEST(Sampler, BatchedGreedyEqualsOneByOne) {
  std::vector<at::Device> devices = {at::kCPU};
  if (at::hasCUDA()) devices.push_back(at::Device(at::kCUDA, 0));
  for (const at::Device& device : devices) {
    SCOPED_TRACE(device.str());
    const at::Tensor logits = at::randn({5, 300}, at::TensorOptions().dtype(at::kBFloat16)).to(device);
    std::vector<std::unique_ptr<Sampler>> owned;
    std::vector<Sampler*> samplers;
    std::vector<at::Tensor> rows;
    std::vector<int64_t> alone;
    for (int64_t i = 0; i < 5; ++i) {
      SamplingOptions greedy;
      greedy.vocab_limit = i % 2 == 0 ? 0 : 100 + 40 * i;
      const int64_t best = logits[i].argmax().item<int64_t>();
      owned.push_back(std::make_unique<Sampler>(greedy, std::vector<int64_t>{i == 2 ? best : 7}));
      samplers.push_back(owned.back().get());
      rows.push_back(logits[i]);
      alone.push_back(Sampler(greedy, {i == 2 ? best : 7}).sample(logits[i]));
    }
    EXPECT_NE(alone[2], logits[2].argmax().item<int64_t>());  // its forbidden best was skipped
    EXPECT_EQ(Sampler::sample_greedy(samplers, rows), alone);
    SamplingOptions hot;
    hot.temperature = 1.0;
    Sampler not_greedy(hot, {});
    EXPECT_THROW(Sampler::sample_greedy({&not_greedy}, {rows[0]}), Error);
  }
}

TEST(Model, LoadingChecksNamesAndShapes) {
  ModelOptions o = test::tiny_model_options();
  LlamaModel model = LlamaModel::create(o, 1, at::kCPU);
  TensorMap tensors = model.parameters();
  tensors.erase("model.layers.1.mlp.up_proj.weight");
  try {
    LlamaModel::from_tensors(o, tensors, at::kCPU);
    FAIL() << "missing tensor accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers.1.mlp.up_proj.weight"), std::string::npos) << e.what();
  }
  tensors = model.parameters();
  tensors["model.norm.weight"] = at::ones({7});
  EXPECT_THROW(LlamaModel::from_tensors(o, tensors, at::kCPU), Error);
  tensors = model.parameters();
  tensors["model.extra.weight"] = at::ones({1});
  EXPECT_THROW(LlamaModel::from_tensors(o, tensors, at::kCPU), Error);
}

TEST(Model, ExtendVocabInitialisesNewRowsToTheMean) {
  ModelOptions o = test::tiny_model_options();
  o.vocab_size = 259;
  LlamaModel model = LlamaModel::create(o, 2, at::kCPU);
  at::Tensor mean = model.parameters().at("model.embed_tokens.weight").mean(0);
  model.extend_vocab(263);
  EXPECT_EQ(model.options().vocab_size, 263);
  at::Tensor embed = model.parameters().at("model.embed_tokens.weight");
  ASSERT_EQ(embed.size(0), 263);
  for (int64_t r = 259; r < 263; ++r) GSA_EXPECT_CLOSE(embed[r], mean, 1e-6, 1e-6);
  EXPECT_EQ(model.parameters().at("lm_head.weight").size(0), 263);
}

// Without a gradient, a forward longer than the model's position slice (32768) runs its norms, projections and
// MLP slice by slice (bounded prefill memory); every position must come out as in the one-piece forward that a
// gradient-recording call runs.
TEST(Model, LongInferenceForwardInPositionSlicesEqualsTheOnePieceForward) {
  ModelOptions o = test::tiny_model_options();
  o.num_layers = 1;
  LlamaModel model = LlamaModel::create(o, 8, at::kCPU);
  std::mt19937 rng(21);
  Document doc;
  for (int64_t i = 0; i < 33000; ++i) doc.context.push_back(rng() % 256);
  for (int64_t i = 0; i < 8; ++i) doc.suffix.push_back(rng() % 256);
  GistOptions g;
  g.chunk = 32;
  const GistLayout layout = build_layout({doc}, g);
  ASSERT_GT(layout.size(), 32768 + 500);
  AttentionOptions attention;
  attention.selection.enabled = true;
  AttentionPlan plan = make_attention_plan({&layout}, 0, -1, attention, at::kCPU);
  ASSERT_TRUE(at::GradMode::is_enabled());
  const at::Tensor one_piece = model.forward(plan.tokens, plan.rope_pos, plan, attention, true);  // [1, T, V]
  at::NoGradGuard no_grad;
  const at::Tensor sliced = model.forward(plan.tokens, plan.rope_pos, plan, attention, true);
  GSA_EXPECT_CLOSE(sliced, one_piece, 1e-5, 1e-5);
}

TEST(Model, Bf16ForwardTracksFp32) {
  ModelOptions o = test::tiny_model_options();
  LlamaModel fp32 = LlamaModel::create(o, 4, at::kCPU);
  o.dtype = DType::kBFloat16;
  LlamaModel bf16 = LlamaModel::from_tensors(o, fp32.parameters(), at::kCPU);
  AttentionOptions attention;
  GistLayout layout = prompt_layout(2, 40, 3, 9);
  EXPECT_EQ(bf16.parameters().at("model.norm.weight").scalar_type(), at::kBFloat16);
  GSA_EXPECT_CLOSE(test::full_recompute_last(bf16, layout, attention),
                   test::full_recompute_last(fp32, layout, attention), 0.1, 0.05);
}

TEST(Model, SelectiveTrainingSendsGradientsThroughKeptKeys) {
  LlamaModel model = LlamaModel::create(test::tiny_model_options(), 8, at::kCPU);
  model.set_requires_grad(true);
  AttentionOptions attention;
  GistLayout layout = prompt_layout(1, 50, 5, 2);
  AttentionPlan plan = make_attention_plan({&layout}, 0, -1, attention, at::kCPU);
  ASSERT_EQ(plan.selection.count, 5);
  at::Tensor cpt = model.forward(plan.tokens, plan.rope_pos, plan, attention, false);
  at::Tensor sel = model.forward(plan.tokens, plan.rope_pos, plan, attention, true);
  // Prefix positions are identical, suffix positions differ (selection instead of the gist mask).
  const int64_t prefix = layout.size() - 5;
  GSA_EXPECT_CLOSE(sel.narrow(1, 0, prefix), cpt.narrow(1, 0, prefix), 1e-6, 1e-6);
  EXPECT_GT((sel.narrow(1, prefix, 5) - cpt.narrow(1, prefix, 5)).abs().max().item<float>(), 1e-4);
  sel.narrow(1, prefix, 5).logsumexp(-1).sum().backward();
  for (const char* name : {"model.layers.2.self_attn.k_proj.weight", "model.layers.1.self_attn.q_proj.weight",
                           "model.embed_tokens.weight"}) {
    at::Tensor g = model.parameters().at(name).grad();
    ASSERT_TRUE(g.defined()) << name;
    EXPECT_GT(g.abs().sum().item<float>(), 0.f) << name;
  }
}

}  // namespace
}  // namespace gsa
