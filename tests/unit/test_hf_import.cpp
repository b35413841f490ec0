// gsa import against transformers (oracle no one here wrote): tests/oracle/hf_import_oracle.py saves random-weight
// LlamaForCausalLM (fp32, llama3 RoPE scaling, untied) and Qwen2ForCausalLM (bf16, q/k/v biases, tied) with
// save_pretrained into sharded folders (a ctest fixture, <build>/oracle/hf_import/<case>). We import them and,
// with gists off (every token raw: plain causal attention), our logits on the oracle's ids equal transformers'
// float64 logits on the original vocabulary (except the gist ids' columns, whose rows import re-initialised)
// within 1e-4 abs + 1e-4 rel (fp32 through 2 layers; bf16 weights
// upcast exactly). Then damaged copies of the folders must fail with messages that name the problem.
// (gsa export is checked by transformers itself in tests/e2e/test_cli_hf.sh.)
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>

#include "common/tolerance.h"
#include "gsa/config/config_loader.h"
#include "gsa/runtime/attention_plan.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/file_util.h"
#include "gsa/runtime/gist_layout.h"
#include "gsa/runtime/hf_checkpoint.h"
#include "gsa/runtime/llama_model.h"
#include "gsa/runtime/safetensors.h"

namespace gsa {
namespace {

std::string case_dir(const std::string& name) { return std::string(GSA_BINARY_DIR) + "/oracle/hf_import/" + name; }

HfImportOptions fp32() {
  HfImportOptions o;
  o.dtype = DType::kFloat32;
  return o;
}

class HfImport : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!path_exists(case_dir(GetParam()) + "/oracle.safetensors")) {
      GTEST_SKIP() << "oracle files absent (python lacks transformers or tokenizers?)";
    }
  }
};

TEST_P(HfImport, LogitsEqualTransformersWithGistsOff) {
  TensorMap oracle = load_safetensors(case_dir(GetParam()) + "/oracle.safetensors");
  at::Tensor ids = oracle.at("input_ids");    // [B, T]
  at::Tensor expected = oracle.at("logits");  // [B, T, V] float64
  const Checkpoint checkpoint = read_hf_model(case_dir(GetParam()) + "/hf", fp32());
  const GsaOptions options = load_config_text(checkpoint.config_text, "imported");
  EXPECT_EQ(options.model.gist_token_ids, (std::vector<int64_t>{302, 303, 304}));  // after the 302 tokens
  EXPECT_EQ(options.model.vocab_size, std::max<int64_t>(305, expected.size(2)));
  EXPECT_EQ(options.model.architecture, GetParam() == "qwen2" ? Architecture::kQwen2 : Architecture::kLlama);
  EXPECT_FALSE(checkpoint.tokenizer_json.empty());
  for (const at::Device device : test::test_devices()) {
    const LlamaModel model = LlamaModel::from_tensors(options.model, checkpoint.model, device);
    std::vector<GistLayout> rows;
    for (int64_t b = 0; b < ids.size(0); ++b) {
      Document doc;
      doc.suffix.assign(ids[b].data_ptr<int64_t>(), ids[b].data_ptr<int64_t>() + ids.size(1));
      rows.push_back(build_layout({doc}, options.gist, options.model.gist_token_ids));
    }
    AttentionOptions attention;
    AttentionPlan plan = make_attention_plan(row_pointers(rows), 0, -1, attention, device);
    at::Tensor rope = at::arange(ids.size(1), at::kLong).view({1, -1}).expand_as(ids).contiguous();
    at::NoGradGuard no_grad;
    at::Tensor logits = model.forward(ids.to(device), rope.to(device), plan, attention, true);  // [B, T, V']
    // The original vocabulary's columns except the gist ids (Qwen2-like padding rows hold them).
    const int64_t vocab = expected.size(2);  // 302 (Llama: gists appended) or 315 (Qwen2: gists on padding rows)
    at::Tensor columns = vocab > 305 ? at::cat({at::arange(302, at::kLong), at::arange(305, vocab, at::kLong)})
                                     : at::arange(302, at::kLong);
    GSA_EXPECT_CLOSE(logits.cpu().index_select(2, columns), expected.index_select(2, columns), 1e-4, 1e-4)
        << GetParam() << " on " << device;
  }
}

TEST_P(HfImport, DtypeFollowsTheWeightsUnlessGiven) {
  const Checkpoint checkpoint = read_hf_model(case_dir(GetParam()) + "/hf", HfImportOptions{});
  const GsaOptions options = load_config_text(checkpoint.config_text, "imported");
  const bool bf16 = GetParam() == "qwen2";  // the oracle saves Qwen2 in bf16, Llama in fp32
  EXPECT_EQ(options.model.dtype, bf16 ? DType::kBFloat16 : DType::kFloat32);
  EXPECT_EQ(checkpoint.model.at("model.embed_tokens.weight").scalar_type(), bf16 ? at::kBFloat16 : at::kFloat);
}

// A copy of the case's folder with `edit` applied; returns the copy's path.
std::string damaged_copy(const std::string& name, const std::string& tag,
                         const std::function<void(const std::string&)>& edit);

TEST_P(HfImport, OneUnshardedFp16FileReadsLikeTheShards) {
  // The shards merged into one model.safetensors (no index), every weight rounded to F16.
  TensorMap merged;
  const std::string copy = damaged_copy(GetParam(), "single", [&](const std::string& d) {
    for (const std::string& file : list_directory(d)) {
      if (file.rfind("model-", 0) != 0) continue;
      for (auto& [name, t] : load_safetensors(join_path(d, file))) merged[name] = t.to(at::kHalf);
      std::remove(join_path(d, file).c_str());
    }
    std::remove(join_path(d, "model.safetensors.index.json").c_str());
    save_safetensors(join_path(d, "model.safetensors"), merged, {{"format", "pt"}});
  });
  const Checkpoint sharded = read_hf_model(case_dir(GetParam()) + "/hf", fp32());
  const Checkpoint single = read_hf_model(copy, HfImportOptions{});  // not all BF16: fp32
  ASSERT_EQ(single.model.size(), sharded.model.size());
  for (const auto& [name, t] : single.model) {
    ASSERT_EQ(t.scalar_type(), at::kFloat) << name;
    if (name == "model.embed_tokens.weight" || name == "lm_head.weight") continue;  // gist rows: mean of F16 rows
    EXPECT_TRUE(at::equal(t, sharded.model.at(name).to(at::kHalf).to(at::kFloat))) << name;
  }
}

std::string damaged_copy(const std::string& name, const std::string& tag,
                         const std::function<void(const std::string&)>& edit) {
  const std::string src = case_dir(name) + "/hf";
  const std::string dst = std::string(GSA_BINARY_DIR) + "/test_tmp/hf_import_" + name + "_" + tag;
  remove_tree(dst);
  make_directories(dst);
  for (const std::string& file : list_directory(src))
    write_file_atomic(join_path(dst, file), read_file(join_path(src, file)));
  edit(dst);
  return dst;
}

// Replaces the first occurrence of `from` in file path by `to` (which must be there).
void replace_in(const std::string& path, const std::string& from, const std::string& to) {
  std::string text = read_file(path);
  const size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos) << from << " not in " << path;
  write_file_atomic(path, text.replace(at, from.size(), to));
}

std::string import_error(const std::string& dir) {
  try {
    read_hf_model(dir, fp32());
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST_P(HfImport, DamagedFoldersGetErrorsNamingTheProblem) {
  const std::string name = GetParam();
  const int64_t shards = name == "llama" ? 12 : 5;
  char second[64];
  std::snprintf(second, sizeof(second), "model-00002-of-%05lld.safetensors", static_cast<long long>(shards));
  const std::string missing =
      damaged_copy(name, "missing", [&](const std::string& d) { std::remove(join_path(d, second).c_str()); });
  EXPECT_NE(import_error(missing).find(str_cat("missing shard '", second, "'")), std::string::npos)
      << import_error(missing);

  const std::string arch = damaged_copy(name, "arch", [&](const std::string& d) {
    replace_in(join_path(d, "config.json"), name == "llama" ? "LlamaForCausalLM" : "Qwen2ForCausalLM",
               "MistralForCausalLM");
  });
  EXPECT_NE(import_error(arch).find("unsupported architecture 'MistralForCausalLM' (supported: LlamaForCausalLM, "
                                    "Qwen2ForCausalLM)"),
            std::string::npos)
      << import_error(arch);

  const std::string shape = damaged_copy(name, "shape", [&](const std::string& d) {
    replace_in(join_path(d, "config.json"), "\"intermediate_size\": 96", "\"intermediate_size\": 100");
  });
  EXPECT_NE(import_error(shape).find("'model.layers.0.mlp.gate_proj.weight' has shape [96, 64], the config needs "
                                     "[100, 64]"),
            std::string::npos)
      << import_error(shape);

  const std::string key = damaged_copy(name, "key", [&](const std::string& d) {
    replace_in(join_path(d, "config.json"), "\"rms_norm_eps\"", "\"rms_norm_epsilon\"");
  });
  EXPECT_NE(import_error(key).find("config.json: missing key 'rms_norm_eps'"), std::string::npos) << import_error(key);

  const std::string truncated = damaged_copy(name, "truncated", [&](const std::string& d) {
    replace_in(join_path(d, "config.json"), "\"rms_norm_eps\"", "\"rms_norm_eps");  // an unterminated key
  });
  EXPECT_NE(import_error(truncated).find("config.json: invalid JSON at byte "), std::string::npos)
      << import_error(truncated);

  const std::string rope = damaged_copy(name, "rope", [&](const std::string& d) {
    replace_in(join_path(d, "config.json"), name == "llama" ? "\"llama3\"" : "\"default\"", "\"yarn\"");
  });
  EXPECT_NE(import_error(rope).find("RoPE scaling 'yarn'"), std::string::npos) << import_error(rope);

  // A shard whose norm weight is an integer tensor.
  const std::string dtype = damaged_copy(name, "dtype", [&](const std::string& d) {
    const std::string last = join_path(d, str_cat("model-", shards < 10 ? "0000" : "000", shards, "-of-",
                                                  shards < 10 ? "0000" : "000", shards, ".safetensors"));
    TensorMap t = load_safetensors(last);
    t.begin()->second = at::zeros(t.begin()->second.sizes(), at::kLong);
    save_safetensors(last, t, {{"format", "pt"}});
  });
  EXPECT_NE(import_error(dtype).find("has dtype Long; weights must be floating point"), std::string::npos)
      << import_error(dtype);

  const std::string no_tokenizer = damaged_copy(
      name, "tokenizer", [&](const std::string& d) { std::remove(join_path(d, "tokenizer.json").c_str()); });
  EXPECT_NE(import_error(no_tokenizer).find("no tokenizer.json"), std::string::npos) << import_error(no_tokenizer);
}

INSTANTIATE_TEST_SUITE_P(Cases, HfImport, ::testing::Values("llama", "qwen2"));

}  // namespace
}  // namespace gsa
