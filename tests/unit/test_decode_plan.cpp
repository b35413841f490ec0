// Batched decode (runtime/decode_plan.h, decode_attention.h): several sequences of different lengths and
// documents, each decoding a few steps, against the float64 dense oracle (tests/common/dense_reference.h: the
// scalar mask rule over every (query, key) pair and brute-force selection), in ordinary and selective layers,
// 1-3 levels, adaptive and fixed budgets, with and without keep_unselected_gists, one batched cache and one cache
// per sequence (of different capacities, through DecodeCaches' pointer tables); on the LibTorch reference
// backend (fp32, tolerance kFp32*), the kernels' CPU twin (bf16, kBf16RelErr) and, with a device, the CUDA
// kernels (bf16, kBf16RelErr). Then the model: a batched decode step's logits equal each sequence's full
// recompute (fp32, 1e-5 / 1e-4), and bad inputs get errors that name them.
#include <gtest/gtest.h>

#include <random>

#include "common/dense_reference.h"
#include "common/model_fixtures.h"
#include "common/tolerance.h"
#include "gsa/runtime/attention_plan.h"
#include "gsa/runtime/decode_attention.h"
#include "gsa/runtime/decode_batch.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/generation.h"
#include "gsa/runtime/llama_model.h"

namespace gsa {
namespace {

// One packed row: `docs` documents of random lengths (one may be shorter than the sink), the last with a suffix.
// Two gist levels of fanout 2 with chunk c0 and `sink` raw tokens per document.
GistOptions two_level_gist(int64_t chunk, int64_t sink) {
  GistOptions gist;
  gist.levels = 2;
  gist.chunk = chunk;
  gist.fanout = 2;
  gist.sink = sink;
  return gist;
}

// The tiny test model with the kernels' head dim 64 (hidden 128).
ModelOptions head64_model_options() {
  ModelOptions o = test::tiny_model_options();
  o.head_dim = 64;
  o.hidden_size = 128;
  return o;
}

GistLayout random_row(std::mt19937& rng, const GistOptions& gist, int64_t docs, int64_t max_context) {
  std::vector<Document> out(docs);
  for (int64_t d = 0; d < docs; ++d) {
    const int64_t n = d == 0 && docs > 1 ? 1 + rng() % 3 : gist.sink + 1 + rng() % max_context;
    for (int64_t i = 0; i < n; ++i) out[d].context.push_back(rng() % 256);
  }
  for (int64_t i = 0; i < 1 + static_cast<int64_t>(rng() % 4); ++i) out.back().suffix.push_back(rng() % 256);
  return build_layout(out, gist);
}

struct DecodeCase {
  int64_t levels, prev_chunks, sink;
  BudgetKind budget;
  bool keep_unselected_gists;
};

struct Backend {
  AttentionBackend backend;
  at::ScalarType dtype;
  at::Device device;
  int64_t head_dim;
  bool separate_caches = false;  // one cache per sequence, of different capacities (DecodeCaches' pointer tables)
};

void check_batched_decode(const DecodeCase& c, const Backend& be, uint32_t seed) {
  std::mt19937 rng(seed);
  at::manual_seed(seed);
  GistOptions gist;
  gist.levels = c.levels;
  gist.chunk = 3;
  gist.fanout = 2;
  gist.sink = c.sink;
  gist.prev_chunks = c.prev_chunks;
  AttentionOptions options;
  options.backend = be.backend;
  options.selection.budget = c.budget;
  options.selection.fixed_k = 2;
  options.selection.keep_unselected_gists = c.keep_unselected_gists;
  const int64_t B = 3, hq = 4, hkv = 2, D = be.head_dim, steps = 3, capacity = 160;
  std::vector<GistLayout> rows;
  for (int64_t b = 0; b < B; ++b) rows.push_back(random_row(rng, gist, 1 + b % 2, 40 + 30 * b));
  for (GistLayout& r : rows) r.append_raw(rng() % 256);  // the first decode token
  const auto opts = at::TensorOptions().dtype(be.dtype).device(be.device);
  KvCache cache;
  std::vector<KvCache> own(B);
  std::vector<KvCache*> own_pointers;
  if (be.separate_caches) {
    for (int64_t b = 0; b < B; ++b) {
      const int64_t c = rows[b].size() + steps + 5 * b;
      own[b].k.push_back(at::randn({1, hkv, c, D}, opts));
      own[b].v.push_back(at::randn({1, hkv, c, D}, opts));
      own_pointers.push_back(&own[b]);
    }
  } else {
    cache.k.push_back(at::randn({B, hkv, capacity, D}, opts));
    cache.v.push_back(at::randn({B, hkv, capacity, D}, opts));
  }
  DecodeCaches caches = be.separate_caches ? DecodeCaches(own_pointers) : DecodeCaches(cache);
  auto cache_of = [&](int64_t b, bool values) {  // [Hkv, C, D] of sequence b
    return be.separate_caches ? (values ? own[b].v[0][0] : own[b].k[0][0]) : (values ? cache.v[0][b] : cache.k[0][b]);
  };
  DecodePlan plan({&rows[0], &rows[1], &rows[2]}, options, be.device);
  const double scale = 1.0 / std::sqrt(double(D));
  for (int64_t step = 0; step < steps; ++step) {
    if (step > 0) {
      std::vector<int64_t> tokens;
      for (GistLayout& r : rows) {
        tokens.push_back(rng() % 256);
        r.append_raw(tokens.back());
      }
      plan.advance(tokens);
    }
    for (bool selective : {false, true}) {
      const at::Tensor q = at::randn({B, hq, 1, D}, opts), k = at::randn({B, hkv, 1, D}, opts),
                       v = at::randn({B, hkv, 1, D}, opts);
      DecodeLayerAttention attention(plan, options, caches);
      const at::Tensor got = attention.attend(0, selective, q, k, v, scale);  // [B, Hq, 1, D]
      for (int64_t b = 0; b < B; ++b) {
        const GistLayout& r = rows[b];
        const int64_t p = r.size() - 1;
        const at::Tensor kb = cache_of(b, false).narrow(1, 0, r.size()).cpu().to(at::kDouble);  // [Hkv, T, D]
        const at::Tensor vb = cache_of(b, true).narrow(1, 0, r.size()).cpu().to(at::kDouble);
        const at::Tensor qb = q[b].cpu().to(at::kDouble);  // [Hq, 1, D]
        const at::Tensor keep = test::dense_keep_mask(r, p, 1, qb, kb, selective, options.selection);
        const at::Tensor want = test::dense_attention(qb, kb, vb, keep, scale);
        const auto what = [&] {
          return ::testing::Message() << "levels " << c.levels << " N " << c.prev_chunks << " sink " << c.sink
                                      << " keep " << c.keep_unselected_gists << " selective " << selective << " step "
                                      << step << " sequence " << b << " on " << be.device << " " << be.dtype
                                      << (be.separate_caches ? " separate caches" : "");
        };
        if (be.dtype == at::kFloat) {
          EXPECT_TRUE(test::all_close(got[b], want, test::kFp32Atol, test::kFp32Rtol)) << what();
        } else {
          EXPECT_TRUE(test::relative_error_below(got[b], want, test::kBf16RelErr)) << what();
        }
      }
    }
  }
}

const std::vector<DecodeCase> kCases = {
    {1, 1, 2, BudgetKind::kAdaptive, false}, {2, 1, 3, BudgetKind::kAdaptive, false},
    {2, 0, 0, BudgetKind::kFixed, true},     {3, 2, 1, BudgetKind::kFixed, false},
    {1, 2, 3, BudgetKind::kFixed, true},
};

TEST(DecodePlan, ReferenceBackendMatchesDenseOracle) {
  for (size_t i = 0; i < kCases.size(); ++i) {
    for (const bool separate : {false, true}) {
      check_batched_decode(kCases[i], {AttentionBackend::kReference, at::kFloat, at::kCPU, 16, separate}, 100 + i);
    }
  }
}

TEST(DecodePlan, KernelsMatchDenseOracle) {
  for (const at::Device device : test::test_devices()) {
    // The CPU twin is slow: two cases there, all of them on a device.
    const size_t cases = device.is_cpu() ? 2 : kCases.size();
    for (size_t i = 0; i < cases; ++i) {
      const AttentionBackend backend = device.is_cpu() ? AttentionBackend::kKernels : AttentionBackend::kAuto;
      for (const bool separate : {false, true}) {
        check_batched_decode(kCases[i], {backend, at::kBFloat16, device, 64, separate}, 200 + i);
      }
    }
  }
}

TEST(DecodePlan, BatchedModelStepEqualsEachSequencesFullRecompute) {
  at::NoGradGuard no_grad;
  std::mt19937 rng(7);
  const GistOptions gist = two_level_gist(3, 2);
  LlamaModel model = LlamaModel::create(test::tiny_model_options(), 3, at::kCPU);
  AttentionOptions attention;
  const int64_t capacity = 200;
  std::vector<GistLayout> rows;
  for (int64_t b = 0; b < 3; ++b) rows.push_back(random_row(rng, gist, 1 + b % 2, 50 + 25 * b));
  // Prefill each sequence into its row of a batched cache.
  KvCache cache = model.make_cache(3, capacity);
  for (int64_t b = 0; b < 3; ++b) {
    KvCache one = model.make_cache(1, capacity);
    AttentionPlan plan = make_attention_plan({&rows[b]}, 0, -1, attention, at::kCPU);
    model.forward(plan.tokens, plan.rope_pos, plan, attention, true, &one);
    for (size_t l = 0; l < cache.k.size(); ++l) {
      cache.k[l][b].copy_(one.k[l][0]);
      cache.v[l][b].copy_(one.v[l][0]);
    }
  }
  std::unique_ptr<DecodePlan> plan;
  for (int step = 0; step < 4; ++step) {
    std::vector<int64_t> tokens;
    for (GistLayout& r : rows) {
      tokens.push_back(rng() % 256);
      r.append_raw(tokens.back());
    }
    if (plan == nullptr) {
      plan = std::make_unique<DecodePlan>(std::vector<const GistLayout*>{&rows[0], &rows[1], &rows[2]}, attention,
                                          at::kCPU);
    } else {
      plan->advance(tokens);
    }
    DecodeLayerAttention layer_attention(*plan, attention, cache);
    const at::Tensor logits = model.forward(plan->tokens(), plan->rope_pos(), layer_attention, attention, true);
    for (int64_t b = 0; b < 3; ++b) {
      GSA_EXPECT_CLOSE(logits[b][0], test::full_recompute_last(model, rows[b], attention), 1e-5, 1e-4)
          << "step " << step << " sequence " << b;
    }
  }
}

// ||a - b|| / ||b|| in float64.
double relative_error(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor x = a.cpu().to(at::kDouble), y = b.cpu().to(at::kDouble);
  return (x - y).norm().item<double>() / y.norm().item<double>();
}

// The bf16 model with the kernels (prefill on the attention kernels, which get q/k/v as transposed views, decode
// steps on the sparse decode and selection kernels; their CPU twin where forced on the CPU, the CUDA kernels on a
// device) and the same bf16 model on the LibTorch reference backend, both against the fp32 model's full
// recompute on the CPU: at the prefill and every step, the kernels' relative logit error is at most 1.5x the
// reference backend's plus 0.005 (both carry the bf16 model's rounding; a wrong attention result is far above).
TEST(DecodePlan, Bf16KernelsGenerationTracksFp32AsWellAsReferenceBackend) {
  at::NoGradGuard no_grad;
  for (const at::Device device : test::test_devices()) {
    std::mt19937 rng(11);
    const GistOptions gist = two_level_gist(4, 2);
    ModelOptions o = head64_model_options();
    LlamaModel fp32 = LlamaModel::create(o, 5, at::kCPU);
    o.dtype = DType::kBFloat16;
    LlamaModel bf16 = LlamaModel::from_tensors(o, fp32.parameters(), device);
    AttentionOptions reference, kernels;
    reference.backend = AttentionBackend::kReference;
    kernels.backend = device.is_cuda() ? AttentionBackend::kAuto : AttentionBackend::kKernels;
    GistLayout prompt = random_row(rng, gist, 2, 90);
    Generator with_kernels(bf16, kernels, prompt, prompt.size() + 8);
    Generator with_reference(bf16, reference, prompt, prompt.size() + 8);
    auto check = [&](const at::Tensor& got, const at::Tensor& ref, const std::string& what) {
      const at::Tensor want = test::full_recompute_last(fp32, with_kernels.layout(), reference);
      const double error = relative_error(got, want), bound = 1.5 * relative_error(ref, want) + 0.005;
      EXPECT_LE(error, bound) << what << " on " << device;
    };
    check(with_kernels.prefill(), with_reference.prefill(), "prefill");
    for (int step = 0; step < 4; ++step) {
      const int64_t token = rng() % 256;
      check(with_kernels.step(token), with_reference.step(token), "step " + std::to_string(step));
    }
  }
}

// The fused decode path multiplies by concatenated copies of the q/k/v and gate/up weights
// (LlamaModel::fused_projections): after weights change in place (a training step between generations), a new
// generation must use the new weights. Oracle: the reference backend (unfused layers) on the changed model; the
// kernels' step must be as close to it as before the change, and far from the step before the change.
TEST(DecodePlan, FusedDecodeFollowsWeightsChangedInPlace) {
  at::NoGradGuard no_grad;
  std::mt19937 rng(13);
  const GistOptions gist = two_level_gist(4, 2);
  ModelOptions o = head64_model_options();
  o.dtype = DType::kBFloat16;
  const at::Device device = test::test_devices().back();  // the GPU where there is one, else the CPU twins
  LlamaModel model = LlamaModel::create(o, 9, device);
  AttentionOptions reference, kernels;
  reference.backend = AttentionBackend::kReference;
  kernels.backend = device.is_cuda() ? AttentionBackend::kAuto : AttentionBackend::kKernels;
  const GistLayout prompt = random_row(rng, gist, 1, 60);
  const int64_t token = 17;
  auto step_of = [&](const AttentionOptions& attention) {
    Generator generator(model, attention, prompt, prompt.size() + 4);
    generator.prefill();
    return generator.step(token).cpu();
  };
  const at::Tensor before = step_of(kernels);  // builds the fused weights
  for (const char* name : {"model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.v_proj.weight",
                           "model.layers.0.mlp.up_proj.weight", "model.layers.1.mlp.gate_proj.weight"}) {
    at::Tensor weight = model.parameters().at(name);  // the model's own storage
    weight.mul_(-1.5);
  }
  const at::Tensor after = step_of(kernels), want = step_of(reference);
  EXPECT_LT(relative_error(after, want), 0.2 * relative_error(before, want))
      << "the fused decode used the weights from before the change";
}

// DecodeBatch (stacked per-sequence plans, per-sequence caches of different capacities) equals each sequence's
// own step, while the batch changes: a sequence leaves after three steps and another joins (fp32, 1e-5 / 1e-4),
// on the reference backend and on the kernels' CPU twins (bf16, head dim 64: kBf16RelErr). The stacked plan is
// built twice (first step, change of composition) and advanced in place on the other steps.
TEST(DecodePlan, BatchedStepsOfGeneratorsEqualTheirOwnSteps) {
  at::NoGradGuard no_grad;
  for (const bool kernels : {false, true}) {
    std::mt19937 rng(21);
    const GistOptions gist = two_level_gist(3, 2);
    ModelOptions o = kernels ? head64_model_options() : test::tiny_model_options();
    if (kernels) o.dtype = DType::kBFloat16;
    LlamaModel model = LlamaModel::create(o, 4, at::kCPU);
    AttentionOptions attention;
    attention.backend = kernels ? AttentionBackend::kKernels : AttentionBackend::kReference;
    std::vector<GistLayout> prompts;
    for (int i = 0; i < 4; ++i) prompts.push_back(random_row(rng, gist, 1 + i % 2, 40 + 20 * i));
    std::vector<std::unique_ptr<Generator>> batched, alone;
    for (const GistLayout& p : prompts) {
      batched.push_back(std::make_unique<Generator>(model, attention, p, p.size() + 300));
      alone.push_back(std::make_unique<Generator>(model, attention, p, p.size() + 8));
      batched.back()->prefill();
      alone.back()->prefill();
    }
    DecodeBatch batch;
    for (int step = 0; step < 7; ++step) {
      // Sequences 0-2 for three steps, then 1-3 (0 left, 3 joined).
      const std::vector<int> members = step < 3 ? std::vector<int>{0, 1, 2} : std::vector<int>{1, 2, 3};
      std::vector<Generator*> sequences;
      std::vector<int64_t> tokens;
      for (int m : members) {
        sequences.push_back(batched[m].get());
        tokens.push_back(rng() % 256);
      }
      const std::vector<at::Tensor> got = batch.step(sequences, tokens);
      for (size_t j = 0; j < members.size(); ++j) {
        const at::Tensor want = alone[members[j]]->step(tokens[j]);
        if (kernels) {
          EXPECT_TRUE(test::relative_error_below(got[j], want, test::kBf16RelErr)) << "step " << step;
        } else {
          GSA_EXPECT_CLOSE(got[j], want, 1e-5, 1e-4) << "step " << step << " sequence " << members[j];
        }
      }
    }
    EXPECT_EQ(batch.restacks(), 2);
  }
}

// On CUDA with the kernels, decode steps replay a captured CUDA graph (decode_graph.h): one sequence
// (Generator::step) and a changing batch (DecodeBatch) give the logits of the same steps run eagerly
// (attention.cuda_graphs = false) over 300 steps, across a cache growth (the capacity grows in 256-position
// blocks, which recaptures) and a change of batch composition. Both run the same kernels with the same split
// counts (sized on the plan's listed rows, which a step does not change), so they agree far inside the bf16
// tolerance: 1e-3 relative (measured 2.02e-2 at step 284 when the eager split count still followed the generated
// rows and the graph's did not).
TEST(DecodePlan, CudaGraphStepsEqualEagerSteps) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  at::NoGradGuard no_grad;
  std::mt19937 rng(5);
  const GistOptions gist = two_level_gist(4, GistOptions().sink);
  ModelOptions o = head64_model_options();
  o.num_heads = 8;
  o.num_kv_heads = 2;
  o.dtype = DType::kBFloat16;
  LlamaModel model = LlamaModel::create(o, 6, at::kCUDA);
  AttentionOptions graphs, eager;
  graphs.selection.enabled = eager.selection.enabled = true;
  eager.cuda_graphs = false;
  ASSERT_TRUE(decode_step_capturable(model, graphs));
  ASSERT_FALSE(decode_step_capturable(model, eager));
  std::vector<GistLayout> prompts;
  for (int i = 0; i < 3; ++i) prompts.push_back(random_row(rng, gist, 1, 150 + 40 * i));
  std::vector<std::unique_ptr<Generator>> with, without;
  for (const GistLayout& p : prompts) {
    // Sequence 0 steps 300 times alone, then 150 times in the batch: room for 450 tokens and their gists.
    with.push_back(std::make_unique<Generator>(model, graphs, p, p.size() + 700));
    without.push_back(std::make_unique<Generator>(model, eager, p, p.size() + 700));
    with.back()->prefill();
    without.back()->prefill();
  }
  // Sequence 0 alone through Generator::step.
  for (int step = 0; step < 300; ++step) {
    const int64_t token = rng() % 256;
    const at::Tensor got = with[0]->step(token), want = without[0]->step(token);
    ASSERT_TRUE(test::relative_error_below(got, want, 1e-3)) << "step " << step;
  }
  // Sequences 1-2 together for 150 steps, then 0-2.
  DecodeBatch graphed, plain;
  for (int step = 0; step < 300; ++step) {
    const std::vector<int> members = step < 150 ? std::vector<int>{1, 2} : std::vector<int>{0, 1, 2};
    std::vector<Generator*> a, b;
    std::vector<int64_t> tokens;
    for (int m : members) {
      a.push_back(with[m].get());
      b.push_back(without[m].get());
      tokens.push_back(rng() % 256);
    }
    const std::vector<at::Tensor> got = graphed.step(a, tokens), want = plain.step(b, tokens);
    for (size_t j = 0; j < members.size(); ++j) {
      ASSERT_TRUE(test::relative_error_below(got[j], want[j], 1e-3)) << "step " << step << " sequence " << j;
    }
  }
  EXPECT_GE(graphed.captures(), 2);  // recaptured after the composition changed
  EXPECT_EQ(plain.captures(), 0);
}

TEST(DecodePlan, RejectsBadInputsByName) {
  GistOptions gist;
  Document doc;
  doc.context.assign(20, 7);
  GistLayout row = build_layout({doc}, gist);  // ends with a gist: no decode token appended
  auto message = [](auto fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  AttentionOptions options;
  EXPECT_NE(message([&] { DecodePlan({&row}, options, at::kCPU); }).find("first decode token"), std::string::npos);
  row.append_raw(5);
  DecodePlan plan({&row}, options, at::kCPU);
  EXPECT_NE(message([&] { plan.advance({1, 2}); }).find("2 tokens for 1 sequences"), std::string::npos);
  KvCache small{{at::zeros({1, 1, 4, 8})}, {at::zeros({1, 1, 4, 8})}};
  DecodeLayerAttention attention(plan, options, small);
  EXPECT_NE(
      message([&] {
        attention.attend(0, false, at::zeros({1, 2, 1, 8}), at::zeros({1, 1, 1, 8}), at::zeros({1, 1, 1, 8}), 1.0);
      }).find("cannot hold position"),
      std::string::npos);
}

}  // namespace
}  // namespace gsa
