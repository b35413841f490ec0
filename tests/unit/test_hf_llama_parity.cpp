// The oracle no one here wrote: with gists off (every token raw, so the mask is plain causal), our Llama's
// logits equal transformers' LlamaForCausalLM given the same random weights through a safetensors file.
// tests/oracle/hf_llama_oracle.py writes <build>/oracle/hf_llama/<case>/{model,oracle}.safetensors (a ctest
// fixture); the model there runs in float64, ours in fp32. Tolerance 1e-4 abs + 1e-4 rel (fp32 rounding
// through 2 layers; measured max error is ~1e-6).
#include <gtest/gtest.h>

#include "common/tolerance.h"
#include "gsa/runtime/attention_plan.h"
#include "gsa/runtime/file_util.h"
#include "gsa/runtime/gist_layout.h"
#include "gsa/runtime/llama_model.h"
#include "gsa/runtime/safetensors.h"

namespace gsa {
namespace {

// The cases of hf_llama_oracle.py.
ModelOptions case_options(const std::string& name) {
  ModelOptions o;
  o.vocab_size = 264;
  o.hidden_size = 64;
  o.intermediate_size = 176;
  o.num_layers = 2;
  o.num_heads = 4;
  o.head_dim = 16;
  o.rms_norm_eps = 1e-5;
  if (name == "gqa") {
    o.num_kv_heads = 2;
    o.rope_theta = 10000;
    o.tie_embeddings = false;
  } else {
    o.num_kv_heads = 1;
    o.rope_theta = 500000;
    o.tie_embeddings = true;
  }
  return o;
}

class HfLlamaParity : public ::testing::TestWithParam<std::string> {};

TEST_P(HfLlamaParity, LogitsEqualTransformersWithGistsOff) {
  const std::string dir = std::string(GSA_BINARY_DIR) + "/oracle/hf_llama/" + GetParam();
  if (!path_exists(dir + "/oracle.safetensors")) GTEST_SKIP() << "oracle files absent (python lacks transformers?)";
  TensorMap oracle = load_safetensors(dir + "/oracle.safetensors");
  at::Tensor ids = oracle.at("input_ids");      // [B, T]
  at::Tensor expected = oracle.at("logits");    // [B, T, V] float64
  for (const at::Device device : test::test_devices()) {
    LlamaModel model = LlamaModel::from_tensors(case_options(GetParam()), load_safetensors(dir + "/model.safetensors"),
                                                device);
    std::vector<GistLayout> rows;
    for (int64_t b = 0; b < ids.size(0); ++b) {
      Document doc;
      doc.suffix.assign(ids[b].data_ptr<int64_t>(), ids[b].data_ptr<int64_t>() + ids.size(1));
      rows.push_back(build_layout({doc}, GistOptions{}));
    }
    AttentionOptions attention;
    AttentionPlan plan = make_attention_plan(row_pointers(rows), 0, -1, attention, device);
    at::Tensor rope = at::arange(ids.size(1), at::kLong).view({1, -1}).expand_as(ids).contiguous();
    at::NoGradGuard no_grad;
    at::Tensor logits = model.forward(ids.to(device), rope.to(device), plan, attention, true);
    GSA_EXPECT_CLOSE(logits, expected, 1e-4, 1e-4) << GetParam() << " on " << device;
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, HfLlamaParity, ::testing::Values("gqa", "tied"));

}  // namespace
}  // namespace gsa
