// Attention modes (runtime/attention_mode.h): `full` runs the model exactly as a plain causal Llama over the raw
// tokens (float64 dense oracle, no gist token anywhere), on the reference path and the kernels; what each mode
// turns on; names and bad names.
#include <gtest/gtest.h>

#include <random>

#include "common/dense_llama.h"
#include "common/tolerance.h"
#include "gsa/runtime/attention_mode.h"
#include "gsa/runtime/attention_plan.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/llama_model.h"

namespace gsa {
namespace {

GsaOptions tiny_options(int64_t levels) {
  GsaOptions o;
  o.model.vocab_size = 264;
  o.model.hidden_size = 32;
  o.model.intermediate_size = 64;
  o.model.num_layers = 3;
  o.model.num_heads = 4;
  o.model.num_kv_heads = 2;
  o.model.head_dim = 8;
  o.model.init_std = 0.2;
  o.gist.sink = 2;
  o.gist.chunk = 3;
  o.gist.fanout = 2;
  o.gist.levels = levels;
  return o;
}

Document random_document(int64_t context, int64_t suffix, uint32_t seed) {
  std::mt19937 rng(seed);
  Document doc;
  for (int64_t i = 0; i < context; ++i) doc.context.push_back(rng() % 256);
  for (int64_t i = 0; i < suffix; ++i) doc.suffix.push_back(rng() % 256);
  return doc;
}

// logits [T, V] of one document run in `mode` on the efficient path.
at::Tensor mode_logits(const LlamaModel& model, const GsaOptions& options, AttentionMode mode, const Document& doc,
                       GistLayout* layout_out = nullptr) {
  at::NoGradGuard no_grad;
  const AttentionModeOptions m = attention_mode_options(mode, options);
  const GistLayout layout = build_layout({mode_document(doc, m)}, m.gist);
  AttentionPlan plan = make_attention_plan({&layout}, 0, -1, m.attention, model.device());
  at::Tensor logits = model.forward(plan.tokens, plan.rope_pos, plan, m.attention, m.selective);
  if (layout_out != nullptr) *layout_out = layout;
  return logits[0];
}

TEST(AttentionMode, FullEqualsPlainCausalDenseModel) {
  for (const at::Device device : test::test_devices()) {
    for (int64_t levels : {1, 2}) {
      for (bool kernels : {false, true}) {  // the LibTorch reference path, the kernels (their CPU twin on CPU)
        GsaOptions options = tiny_options(levels);
        options.attention.selection.enabled = kernels;  // full ignores it
        options.attention.backend = kernels ? AttentionBackend::kKernels : AttentionBackend::kReference;
        if (kernels) {  // what the kernels run: head dim 64, bf16
          options.model.head_dim = 64;
          options.model.dtype = DType::kBFloat16;
        }
        const LlamaModel model = LlamaModel::create(options.model, 7 + levels, device);
        const Document doc = random_document(50, 6, 3);
        GistLayout layout;
        const at::Tensor logits = mode_logits(model, options, AttentionMode::kFull, doc, &layout);
        // No gist anywhere, RoPE positions 0..T-1, the raw tokens in order.
        std::vector<int64_t> raw = doc.context;
        raw.insert(raw.end(), doc.suffix.begin(), doc.suffix.end());
        EXPECT_EQ(layout.tokens, raw);
        for (int64_t t = 0; t < layout.size(); ++t) {
          ASSERT_FALSE(layout.is_gist(t)) << t;
          ASSERT_EQ(layout.rope_pos[t], t);
        }
        const at::Tensor expected = test::dense_causal_llama_logits(options.model, model.parameters(), raw);
        if (kernels) {  // the oracle runs on the same bf16 weights, in float64
          EXPECT_TRUE(test::relative_error_below(logits, expected, test::kBf16RelErr)) << "levels " << levels;
        } else {
          GSA_EXPECT_CLOSE(logits, expected, test::kFp32Atol, test::kFp32Rtol) << "levels " << levels << " on "
                                                                               << device;
        }
      }
    }
  }
}

TEST(AttentionMode, GistAndSelectiveDifferFromFullAndFromEachOther) {
  // The oracle above shows full is the plain model; here the other two modes must really compress and select.
  const GsaOptions options = tiny_options(1);
  const LlamaModel model = LlamaModel::create(options.model, 5, at::kCPU);
  const Document doc = random_document(60, 5, 9);
  GistLayout gist_layout, selective_layout;
  const at::Tensor full = mode_logits(model, options, AttentionMode::kFull, doc);
  const at::Tensor gist = mode_logits(model, options, AttentionMode::kGist, doc, &gist_layout);
  const at::Tensor selective = mode_logits(model, options, AttentionMode::kSelective, doc, &selective_layout);
  EXPECT_GT(gist_layout.size(), 65);  // gists inserted
  EXPECT_EQ(gist_layout.tokens, selective_layout.tokens);
  const int64_t last = gist_layout.size() - 1;
  EXPECT_GT((full[64] - gist[last]).abs().max().item<double>(), 1e-3);
  EXPECT_GT((gist[last] - selective[last]).abs().max().item<double>(), 1e-3);
}

TEST(AttentionMode, OptionsPerMode) {
  GsaOptions options = tiny_options(2);
  options.attention.selection.enabled = false;
  options.attention.selection.first_selective_layer = 2;
  options.attention.selection.budget = BudgetKind::kFixed;
  const AttentionModeOptions full = attention_mode_options(AttentionMode::kFull, options);
  const AttentionModeOptions gist = attention_mode_options(AttentionMode::kGist, options);
  const AttentionModeOptions selective = attention_mode_options(AttentionMode::kSelective, options);
  EXPECT_FALSE(full.insert_gists);
  EXPECT_TRUE(gist.insert_gists && selective.insert_gists);
  EXPECT_FALSE(full.selective || full.attention.selection.enabled);
  EXPECT_FALSE(gist.selective || gist.attention.selection.enabled);
  EXPECT_TRUE(selective.selective && selective.attention.selection.enabled);
  EXPECT_EQ(selective.attention.selection.first_selective_layer, 2);  // the rest of the config is kept
  EXPECT_EQ(selective.attention.selection.budget, BudgetKind::kFixed);
  EXPECT_EQ(gist.gist.levels, 2);
  EXPECT_EQ(config_attention_mode(options), AttentionMode::kGist);
  options.attention.selection.enabled = true;
  EXPECT_EQ(config_attention_mode(options), AttentionMode::kSelective);
}

TEST(AttentionMode, NamesRoundTripAndBadNamesAreNamed) {
  for (AttentionMode m : {AttentionMode::kFull, AttentionMode::kGist, AttentionMode::kSelective}) {
    EXPECT_EQ(parse_attention_mode(attention_mode_name(m)), m);
  }
  EXPECT_EQ(parse_attention_modes("selective,full"),
            (std::vector<AttentionMode>{AttentionMode::kSelective, AttentionMode::kFull}));
  auto message = [](const std::string& list) {
    try {
      parse_attention_modes(list);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("full,dense").find("'dense' is not one of full, gist, selective"), std::string::npos);
  EXPECT_NE(message("gist,gist").find("listed twice"), std::string::npos);
  EXPECT_NE(message("").find("no attention mode"), std::string::npos);
  EXPECT_NE(message("full,,gist").find("'' is not one of"), std::string::npos);
}

}  // namespace
}  // namespace gsa
