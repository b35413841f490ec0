// gsa_config: the shipped configs load, defaults equal options.h, every kind of bad input fails with a
// ConfigError that says where (FILE:LINE:COLUMN or the --set override) and names the field path, overrides
// set each field type, and options_to_text round-trips.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gsa/config/config_loader.h"

namespace gsa {
namespace {

namespace fs = std::filesystem;

const fs::path kConfigsDir = fs::path(GSA_SOURCE_DIR) / "configs";

void expect_options_eq(const GsaOptions& a, const GsaOptions& b) {
  EXPECT_EQ(a.model.vocab_size, b.model.vocab_size);
  EXPECT_EQ(a.model.hidden_size, b.model.hidden_size);
  EXPECT_EQ(a.model.intermediate_size, b.model.intermediate_size);
  EXPECT_EQ(a.model.num_layers, b.model.num_layers);
  EXPECT_EQ(a.model.num_heads, b.model.num_heads);
  EXPECT_EQ(a.model.num_kv_heads, b.model.num_kv_heads);
  EXPECT_EQ(a.model.head_dim, b.model.head_dim);
  EXPECT_EQ(a.model.rope_theta, b.model.rope_theta);
  EXPECT_EQ(a.model.rms_norm_eps, b.model.rms_norm_eps);
  EXPECT_EQ(a.model.tie_embeddings, b.model.tie_embeddings);
  EXPECT_EQ(a.model.dtype, b.model.dtype);
  EXPECT_EQ(a.model.init_std, b.model.init_std);
  EXPECT_EQ(a.model.architecture, b.model.architecture);
  EXPECT_EQ(a.model.attention_bias, b.model.attention_bias);
  EXPECT_EQ(a.model.rope_scaling, b.model.rope_scaling);
  EXPECT_EQ(a.model.rope_scaling_factor, b.model.rope_scaling_factor);
  EXPECT_EQ(a.model.rope_low_freq_factor, b.model.rope_low_freq_factor);
  EXPECT_EQ(a.model.rope_high_freq_factor, b.model.rope_high_freq_factor);
  EXPECT_EQ(a.model.rope_original_max_position, b.model.rope_original_max_position);
  EXPECT_EQ(a.model.max_position_embeddings, b.model.max_position_embeddings);
  EXPECT_EQ(a.model.gist_token_ids, b.model.gist_token_ids);

  EXPECT_EQ(a.gist.sink, b.gist.sink);
  EXPECT_EQ(a.gist.chunk, b.gist.chunk);
  EXPECT_EQ(a.gist.fanout, b.gist.fanout);
  EXPECT_EQ(a.gist.levels, b.gist.levels);
  EXPECT_EQ(a.gist.prev_chunks, b.gist.prev_chunks);
  EXPECT_EQ(a.gist.word_aware, b.gist.word_aware);

  EXPECT_EQ(a.attention.query_block, b.attention.query_block);
  EXPECT_EQ(a.attention.backend, b.attention.backend);
  EXPECT_EQ(a.attention.reference_chunk_queries, b.attention.reference_chunk_queries);
  EXPECT_EQ(a.attention.deterministic, b.attention.deterministic);
  EXPECT_EQ(a.attention.selection.enabled, b.attention.selection.enabled);
  EXPECT_EQ(a.attention.selection.first_selective_layer, b.attention.selection.first_selective_layer);
  EXPECT_EQ(a.attention.selection.budget, b.attention.selection.budget);
  EXPECT_EQ(a.attention.selection.fixed_k, b.attention.selection.fixed_k);
  EXPECT_EQ(a.attention.selection.keep_unselected_gists, b.attention.selection.keep_unselected_gists);

  EXPECT_EQ(a.train.mode, b.train.mode);
  EXPECT_EQ(a.train.steps, b.train.steps);
  EXPECT_EQ(a.train.batch_size, b.train.batch_size);
  EXPECT_EQ(a.train.lr, b.train.lr);
  EXPECT_EQ(a.train.min_lr_ratio, b.train.min_lr_ratio);
  EXPECT_EQ(a.train.warmup_steps, b.train.warmup_steps);
  EXPECT_EQ(a.train.decay_fraction, b.train.decay_fraction);
  EXPECT_EQ(a.train.weight_decay, b.train.weight_decay);
  EXPECT_EQ(a.train.beta1, b.train.beta1);
  EXPECT_EQ(a.train.beta2, b.train.beta2);
  EXPECT_EQ(a.train.grad_clip, b.train.grad_clip);
  EXPECT_EQ(a.train.seed, b.train.seed);
  EXPECT_EQ(a.train.log_every, b.train.log_every);
  EXPECT_EQ(a.train.eval_batches, b.train.eval_batches);
  EXPECT_EQ(a.train.output_dir, b.train.output_dir);
  EXPECT_EQ(a.train.checkpoint_every, b.train.checkpoint_every);
  EXPECT_EQ(a.train.keep_checkpoints, b.train.keep_checkpoints);
  EXPECT_EQ(a.train.grad_accumulation, b.train.grad_accumulation);
  EXPECT_EQ(a.train.activation_checkpointing, b.train.activation_checkpointing);
  EXPECT_EQ(a.train.master_weights, b.train.master_weights);

  EXPECT_EQ(a.data.retrieval.num_pairs, b.data.retrieval.num_pairs);
  EXPECT_EQ(a.data.retrieval.key_len, b.data.retrieval.key_len);
  EXPECT_EQ(a.data.retrieval.value_len, b.data.retrieval.value_len);
  EXPECT_EQ(a.data.retrieval.alphabet, b.data.retrieval.alphabet);
  EXPECT_EQ(a.data.source, b.data.source);
  EXPECT_EQ(a.data.tokenizer, b.data.tokenizer);
  EXPECT_EQ(a.data.examples_per_row, b.data.examples_per_row);
  EXPECT_EQ(a.data.row_tokens, b.data.row_tokens);
  EXPECT_EQ(a.data.passkey.filler_sentences, b.data.passkey.filler_sentences);
  EXPECT_EQ(a.data.passkey.digits, b.data.passkey.digits);
  EXPECT_EQ(a.data.multi_doc.documents, b.data.multi_doc.documents);
  EXPECT_EQ(a.data.multi_doc.pairs_per_document, b.data.multi_doc.pairs_per_document);
  EXPECT_EQ(a.data.multi_doc.key_len, b.data.multi_doc.key_len);
  EXPECT_EQ(a.data.multi_doc.value_len, b.data.multi_doc.value_len);
  EXPECT_EQ(a.data.multi_doc.alphabet, b.data.multi_doc.alphabet);
  EXPECT_EQ(a.data.multi_doc.questions, b.data.multi_doc.questions);
  EXPECT_EQ(a.data.multi_doc.pair_width, b.data.multi_doc.pair_width);
  EXPECT_EQ(a.data.multi_doc.min_documents, b.data.multi_doc.min_documents);
  EXPECT_EQ(a.data.multi_doc.upper_case_values, b.data.multi_doc.upper_case_values);
  EXPECT_EQ(a.data.multi_doc.compact, b.data.multi_doc.compact);
  EXPECT_EQ(a.data.multi_doc.digit_values, b.data.multi_doc.digit_values);
  EXPECT_EQ(a.data.multi_doc.packed_pairs, b.data.multi_doc.packed_pairs);
  EXPECT_EQ(a.data.multi_doc.filler, b.data.multi_doc.filler);
  EXPECT_EQ(a.data.multi_doc.copy_fraction, b.data.multi_doc.copy_fraction);
  EXPECT_EQ(a.data.multi_doc.copy_min_length, b.data.multi_doc.copy_min_length);
  EXPECT_EQ(a.data.multi_doc.copy_max_length, b.data.multi_doc.copy_max_length);
  EXPECT_EQ(a.data.multi_doc.copy_in_context, b.data.multi_doc.copy_in_context);
  EXPECT_EQ(a.data.multi_doc.copy_digits, b.data.multi_doc.copy_digits);
  EXPECT_EQ(a.data.corpus.path, b.data.corpus.path);
  EXPECT_EQ(a.data.corpus.sequence_length, b.data.corpus.sequence_length);
  EXPECT_EQ(a.data.corpus.jsonl_field, b.data.corpus.jsonl_field);
  EXPECT_EQ(a.data.corpus.bin_dtype, b.data.corpus.bin_dtype);
  EXPECT_EQ(a.data.corpus.bin_document_separator, b.data.corpus.bin_document_separator);
}

// The ConfigError message `load` throws; fails the test when it does not throw.
std::string error_of(const std::function<void()>& load) {
  try {
    load();
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a ConfigError";
  return "";
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

class ConfigLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ =
        fs::temp_directory_path() / ("gsa_config_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes `text` to a fresh file in the temp dir; returns its path.
  std::string write(const std::string& name, const std::string& text) {
    const fs::path path = dir_ / name;
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  }

  // Writes `text` and returns the error of loading it with `overrides`.
  std::string error_loading(const std::string& name, const std::string& text,
                            const std::vector<std::string>& overrides = {}) {
    const std::string path = write(name, text);
    return error_of([&] { load_config_file(path, overrides); });
  }

  fs::path dir_;
};

TEST_F(ConfigLoaderTest, EveryShippedConfigLoads) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(kConfigsDir)) {
    if (entry.path().extension() != ".pbtxt") continue;
    names.insert(entry.path().filename().string());
    SCOPED_TRACE(entry.path().string());
    EXPECT_NO_THROW(load_config_file(entry.path().string()));
    EXPECT_EQ(read_file(entry.path()).rfind("# ", 0), 0u) << "every config starts with a comment";
  }
  for (const char* expected : {"demo.pbtxt", "tiny-retrieval.pbtxt", "tiny-2level.pbtxt", "llama-1b-gsa.pbtxt"}) {
    EXPECT_EQ(names.count(expected), 1u) << expected;
  }
}

TEST_F(ConfigLoaderTest, ShippedConfigsHaveTheirShapes) {
  // The demo: multi-document retrieval, 8x compression, no sink, examples packed into 448-token rows.
  const GsaOptions demo = load_config_file((kConfigsDir / "demo.pbtxt").string());
  EXPECT_EQ(demo.model.vocab_size, 264);
  EXPECT_EQ(demo.model.hidden_size, 128);
  EXPECT_EQ(demo.model.num_layers, 2);
  EXPECT_EQ(demo.model.num_heads, 8);
  EXPECT_EQ(demo.gist.sink, 0);
  EXPECT_EQ(demo.gist.chunk, 8);
  EXPECT_EQ(demo.gist.levels, 1);
  EXPECT_EQ(demo.train.mode, TrainMode::kSelective);
  EXPECT_EQ(demo.data.source, DataSourceKind::kMultiDoc);
  EXPECT_EQ(demo.data.row_tokens, 448);
  EXPECT_GT(demo.data.multi_doc.copy_fraction, 0.0);

  // The tests' small model.
  const GsaOptions tiny = load_config_file((kConfigsDir / "tiny-retrieval.pbtxt").string());
  EXPECT_EQ(tiny.model.vocab_size, 264);
  EXPECT_EQ(tiny.model.hidden_size, 64);
  EXPECT_EQ(tiny.model.num_layers, 2);
  EXPECT_EQ(tiny.model.num_heads, 4);
  EXPECT_EQ(tiny.model.num_kv_heads, 1);
  EXPECT_EQ(tiny.model.head_dim, 16);
  EXPECT_EQ(tiny.gist.sink, 3);
  EXPECT_EQ(tiny.gist.chunk, 4);
  EXPECT_EQ(tiny.gist.fanout, 4);
  EXPECT_EQ(tiny.gist.levels, 1);
  EXPECT_EQ(tiny.train.mode, TrainMode::kSelective);
  EXPECT_EQ(tiny.train.steps, 300);

  const GsaOptions two = load_config_file((kConfigsDir / "tiny-2level.pbtxt").string());
  EXPECT_EQ(two.gist.levels, 2);
  EXPECT_EQ(two.gist.chunk, 4);
  EXPECT_EQ(two.gist.fanout, 2);
  EXPECT_EQ(two.model.hidden_size, tiny.model.hidden_size);

  const GsaOptions llama = load_config_file((kConfigsDir / "llama-1b-gsa.pbtxt").string());
  EXPECT_EQ(llama.model.vocab_size, 128259);
  EXPECT_EQ(llama.model.gist_token_ids, (std::vector<int64_t>{128256, 128257, 128258}));
  EXPECT_EQ(llama.model.rope_scaling, RopeScaling::kLlama3);
  EXPECT_EQ(llama.model.hidden_size, 2048);
  EXPECT_EQ(llama.model.intermediate_size, 8192);
  EXPECT_EQ(llama.model.num_layers, 16);
  EXPECT_EQ(llama.model.num_heads, 32);
  EXPECT_EQ(llama.model.num_kv_heads, 8);
  EXPECT_EQ(llama.model.head_dim, 64);
  EXPECT_EQ(llama.model.rope_theta, 500000.0);
  EXPECT_TRUE(llama.model.tie_embeddings);
  EXPECT_EQ(llama.model.dtype, DType::kBFloat16);
  EXPECT_EQ(llama.gist.chunk, 8);
}

TEST_F(ConfigLoaderTest, EmbeddedDemoIsTheDemoFile) {
  EXPECT_EQ(embedded_demo_config_text(), read_file(kConfigsDir / "demo.pbtxt"));
  expect_options_eq(load_embedded_demo_config(), load_config_file((kConfigsDir / "demo.pbtxt").string()));
  EXPECT_EQ(load_embedded_demo_config({"gist.levels=2"}).gist.levels, 2);
}

TEST_F(ConfigLoaderTest, EmptyConfigGivesOptionsDefaults) {
  expect_options_eq(load_config_text("", "empty.pbtxt"), GsaOptions{});
  expect_options_eq(load_config_file(write("sections.pbtxt",
                                           "model {}\ngist {}\nattention { selection {} }\n"
                                           "train {}\ndata { retrieval {} }\n")),
                    GsaOptions{});
}

TEST_F(ConfigLoaderTest, OptionsStructsUnchangedSinceTheSchema) {
  // A field added to options.h must also go into gsa_config.proto, convert.cpp, validate.cpp and
  // expect_options_eq above; then update these sizes (x86-64, libstdc++).
  EXPECT_EQ(sizeof(ModelOptions), 168u);
  EXPECT_EQ(sizeof(GistOptions), 48u);
  EXPECT_EQ(sizeof(AttentionOptions), 72u);
  EXPECT_EQ(sizeof(TrainOptions), 176u);
  EXPECT_EQ(sizeof(DataOptions), 304u);
  EXPECT_EQ(sizeof(GsaOptions), 768u);
}

TEST_F(ConfigLoaderTest, UnknownFieldNamesFileLinePathAndValidNames) {
  const std::string path = write("unknown.pbtxt", "# comment\ngist {\n  sink: 3\n  levelz: 2\n}\n");
  EXPECT_EQ(error_of([&] { load_config_file(path); }),
            path +
                ":4:3: unknown field gist.levelz (valid fields of gist: sink, chunk, fanout, levels, "
                "prev_chunks, word_aware)");

  const std::string nested = error_loading("nested.pbtxt", "attention {\n  selection {\n    foo: 1\n  }\n}\n");
  EXPECT_NE(nested.find("nested.pbtxt:3:5: unknown field attention.selection.foo (valid fields of "
                        "attention.selection: enabled,"),
            std::string::npos)
      << nested;

  const std::string top = error_loading("top.pbtxt", "modle { num_layers: 2 }\n");
  EXPECT_NE(top.find("top.pbtxt:1:1: unknown field modle (valid fields at top level: model, gist, attention, "
                     "train, data)"),
            std::string::npos)
      << top;
}

TEST_F(ConfigLoaderTest, WrongTypeNamesFileLineAndPath) {
  const std::string text_for_int = error_loading("int.pbtxt", "model {\n  num_layers: \"two\"\n}\n");
  EXPECT_NE(text_for_int.find("int.pbtxt:2:15: model.num_layers: Expected integer"), std::string::npos) << text_for_int;

  const std::string word_for_double = error_loading("double.pbtxt", "train {\n  warmup_steps: 5\n  lr: fast\n}\n");
  EXPECT_NE(word_for_double.find("double.pbtxt:3:7: train.lr: Expected double"), std::string::npos) << word_for_double;

  const std::string float_for_int = error_loading("float.pbtxt", "gist { levels: 1.5 }\n");
  EXPECT_NE(float_for_int.find("float.pbtxt:1:16: gist.levels: Expected integer"), std::string::npos) << float_for_int;

  const std::string repeated = error_loading("twice.pbtxt", "gist {\n  levels: 2\n  levels: 3\n}\n");
  EXPECT_NE(repeated.find("twice.pbtxt:3:"), std::string::npos) << repeated;
  EXPECT_NE(repeated.find("gist.levels"), std::string::npos) << repeated;

  const std::string syntax = error_loading("syntax.pbtxt", "model {\n  num_layers: 2\n");
  EXPECT_NE(syntax.find("syntax.pbtxt:3:1: unexpected end of text: model is not closed"), std::string::npos) << syntax;
}

TEST_F(ConfigLoaderTest, BadEnumNamesPathAndValidValues) {
  const std::string message = error_loading("enum.pbtxt", "model {\n  dtype: FLOAT16\n}\n");
  EXPECT_EQ(message, dir_.string() +
                         "/enum.pbtxt:2:10: model.dtype: unknown enum value \"FLOAT16\" "
                         "(valid: FLOAT32, BFLOAT16)");
  const std::string budget = error_loading("budget.pbtxt", "attention { selection { budget: fixed } }\n");
  EXPECT_NE(budget.find(":1:33: attention.selection.budget: unknown enum value \"fixed\" (valid: ADAPTIVE, FIXED)"),
            std::string::npos)
      << budget;
}

TEST_F(ConfigLoaderTest, OutOfRangeNamesFieldAndLine) {
  const std::string path = write("range.pbtxt",
                                 "# line 1\n"
                                 "model {\n"
                                 "  num_layers: 2\n"
                                 "}\n"
                                 "gist {\n"
                                 "  chunk: 4\n"
                                 "  levels: 5\n"
                                 "}\n");
  EXPECT_EQ(error_of([&] { load_config_file(path); }), path + ":7:3: gist.levels = 5 is out of range (1..4)");

  EXPECT_NE(error_loading("beta.pbtxt", "train {\n  beta2: 1.0\n}\n")
                .find("beta.pbtxt:2:3: train.beta2 = 1 is out of range ([0, 1))"),
            std::string::npos);
  EXPECT_NE(error_loading("decay.pbtxt", "train { decay_fraction: 1.5 }\n")
                .find("decay.pbtxt:1:9: train.decay_fraction = 1.5 is out of range ([0, 1])"),
            std::string::npos);
  EXPECT_NE(error_loading("lr.pbtxt", "train { lr: 0 }\n").find("lr.pbtxt:1:9: train.lr = 0 is out of range (> 0)"),
            std::string::npos);
  EXPECT_NE(error_loading("vocab.pbtxt", "model { vocab_size: 262 }\n")
                .find("vocab.pbtxt:1:9: model.vocab_size = 262 is out of range (>= 263"),
            std::string::npos);
  EXPECT_NE(error_loading("alphabet.pbtxt", "data { retrieval { alphabet: 27 } }\n")
                .find(":1:20: data.retrieval.alphabet = 27 is out of range (2..26)"),
            std::string::npos);
  EXPECT_NE(error_loading("head_dim.pbtxt", "model { head_dim: 15 }\n").find(":1:9: model.head_dim = 15 must be even"),
            std::string::npos);
  EXPECT_NE(error_loading("fanout.pbtxt", "gist { fanout: 1 }\n").find("gist.fanout = 1 is out of range (>= 2)"),
            std::string::npos);
}

TEST_F(ConfigLoaderTest, EveryViolationIsReportedOnItsOwnLine) {
  const std::string message = error_loading("many.pbtxt", "gist {\n  chunk: 0\n  sink: -1\n}\ntrain { steps: 0 }\n");
  EXPECT_NE(message.find("many.pbtxt:3:3: gist.sink = -1 is out of range (>= 0)"), std::string::npos) << message;
  EXPECT_NE(message.find("many.pbtxt:2:3: gist.chunk = 0 is out of range (>= 1)"), std::string::npos) << message;
  EXPECT_NE(message.find("many.pbtxt:5:9: train.steps = 0 is out of range (>= 1)"), std::string::npos) << message;
  EXPECT_EQ(std::count(message.begin(), message.end(), '\n'), 2) << message;
}

TEST_F(ConfigLoaderTest, CrossFieldErrorNamesBothFields) {
  const std::string message = error_loading("gqa.pbtxt", "model {\n  num_heads: 6\n  num_kv_heads: 4\n}\n");
  EXPECT_NE(message.find("gqa.pbtxt:3:3: model.num_heads = 6 is not a multiple of model.num_kv_heads = 4"),
            std::string::npos)
      << message;
  // Only one of the two in the file: its line.
  EXPECT_NE(error_loading("one.pbtxt", "\nmodel { num_kv_heads: 3 }\n").find("one.pbtxt:2:9: model.num_heads = 4"),
            std::string::npos);
  // Either one from an override: the override.
  const std::string path = write("ok.pbtxt", "model {\n  num_heads: 8\n  num_kv_heads: 2\n}\n");
  EXPECT_EQ(error_of([&] {
              load_config_file(path, {"model.num_kv_heads=3"});
            }).rfind("--set model.num_kv_heads=3: model.num_heads = 8 is not a multiple of model.num_kv_heads = 3", 0),
            0u);
}

TEST_F(ConfigLoaderTest, HuggingFaceModelFieldsAreChecked) {
  const std::string outside = error_loading("gist_ids.pbtxt", "model {\n  gist_token_ids: [264, 270]\n}\n");
  EXPECT_NE(outside.find("gist_ids.pbtxt:2:3: model.gist_token_ids[1] = 270 is outside the vocabulary [0, 264)"),
            std::string::npos)
      << outside;
  const std::string twice = error_loading("twice_ids.pbtxt", "model { gist_token_ids: [260, 260] }\n");
  EXPECT_NE(twice.find("model.gist_token_ids has 260 twice"), std::string::npos) << twice;
  const std::string few = error_loading("few_ids.pbtxt", "model { gist_token_ids: [260] }\ngist { levels: 2 }\n");
  EXPECT_NE(few.find("model.gist_token_ids has 1 ids, gist.levels = 2 needs one per level"), std::string::npos) << few;
  const std::string qwen = error_loading("qwen.pbtxt", "model { architecture: QWEN2 }\n");
  EXPECT_NE(qwen.find("model.architecture QWEN2 needs model.attention_bias: true"), std::string::npos) << qwen;
  const std::string rope = error_loading(
      "rope.pbtxt", "model {\n  rope_scaling: LLAMA3_ROPE_SCALING\n  rope_high_freq_factor: 1\n}\n");
  EXPECT_NE(rope.find("model.rope_high_freq_factor must be above model.rope_low_freq_factor"), std::string::npos)
      << rope;
  const GsaOptions fine = load_config_text(
      "model {\n  architecture: QWEN2\n  attention_bias: true\n  gist_token_ids: [261, 262]\n}\n", "fine.pbtxt");
  EXPECT_EQ(fine.model.gist_token_ids, (std::vector<int64_t>{261, 262}));
  EXPECT_EQ(fine.model.architecture, Architecture::kQwen2);
}

TEST_F(ConfigLoaderTest, MasterWeightsNarrowerThanTheModelAreRefused) {
  const std::string narrow = error_loading("narrow.pbtxt", "model { dtype: FLOAT32 }\ntrain { master_weights: BFLOAT16 }\n");
  EXPECT_NE(narrow.find("train.master_weights = BFLOAT16 is narrower than model.dtype = FLOAT32"), std::string::npos)
      << narrow;
  // bf16 parameters with fp32 masters (the default) and pure bf16 both load.
  EXPECT_EQ(load_config_text("model { dtype: BFLOAT16 }", "mixed.pbtxt").train.master_weights, DType::kFloat32);
  EXPECT_EQ(load_config_text("model { dtype: BFLOAT16 }\ntrain { master_weights: BFLOAT16 }", "pure.pbtxt")
                .train.master_weights,
            DType::kBFloat16);
}

TEST_F(ConfigLoaderTest, OverridesSetNestedValuesOfEveryType) {
  const std::string path = write("base.pbtxt", "gist { levels: 1 }\ntrain { output_dir: \"runs/a\" }\n");
  const GsaOptions o = load_config_file(path, {
                                                  "gist.levels=2",                       // int64
                                                  "train.lr=1e-4",                       // double
                                                  "model.tie_embeddings=true",           // bool
                                                  "attention.selection.enabled=0",       // bool as 0/1
                                                  "gist.word_aware=TRUE",                // bool, any case
                                                  "train.output_dir=runs/with space=x",  // string, verbatim
                                                  "model.dtype=bfloat16",                // enum, any case
                                                  "attention.selection.budget=FIXED",    // enum, nested two deep
                                                  "attention.backend=kernels",           // enum
                                                  "train.mode=cpt",                      // enum
                                                  "data.retrieval.alphabet=26",          // int, nested two deep
                                                  "train.seed=-7",                       // negative int
                                                  "gist.chunk = 16",                     // spaces around '='
                                                  "gist.levels=3",                       // later overrides win
                                              });
  EXPECT_EQ(o.gist.levels, 3);
  EXPECT_EQ(o.train.lr, 1e-4);
  EXPECT_TRUE(o.model.tie_embeddings);
  EXPECT_FALSE(o.attention.selection.enabled);
  EXPECT_TRUE(o.gist.word_aware);
  EXPECT_EQ(o.train.output_dir, "runs/with space=x");
  EXPECT_EQ(o.model.dtype, DType::kBFloat16);
  EXPECT_EQ(o.attention.selection.budget, BudgetKind::kFixed);
  EXPECT_EQ(o.attention.backend, AttentionBackend::kKernels);
  EXPECT_EQ(o.train.mode, TrainMode::kCpt);
  EXPECT_EQ(o.data.retrieval.alphabet, 26);
  EXPECT_EQ(o.train.seed, -7);
  EXPECT_EQ(o.gist.chunk, 16);
  EXPECT_EQ(load_config_text("", "empty", {"train.output_dir="}).train.output_dir, "");
}

TEST_F(ConfigLoaderTest, BadOverridePathListsValidNames) {
  auto error_for = [](const std::string& override_text) {
    return error_of([&] { load_config_text("", "empty.pbtxt", {override_text}); });
  };
  EXPECT_EQ(error_for("gist.levls=2"),
            "--set gist.levls=2: unknown field gist.levls (valid fields of gist: sink, chunk, fanout, levels, "
            "prev_chunks, word_aware)");
  EXPECT_EQ(error_for("modle.num_layers=2"),
            "--set modle.num_layers=2: unknown field modle (valid fields at top level: model, gist, attention, "
            "train, data)");
  EXPECT_EQ(error_for("attention.selection.k=2"),
            "--set attention.selection.k=2: unknown field attention.selection.k (valid fields of "
            "attention.selection: enabled, first_selective_layer, budget, fixed_k, keep_unselected_gists)");
  EXPECT_NE(error_for("gist=3").find("--set gist=3: gist is a message; set one of its fields (sink, chunk"),
            std::string::npos);
  EXPECT_NE(error_for("gist.levels.x=3").find("gist.levels is a int64 field, not a message"), std::string::npos);
  EXPECT_NE(error_for("gist..levels=3").find("empty field name"), std::string::npos);
  EXPECT_EQ(error_for("gist.levels"), "--set gist.levels: missing '=' (expected a.b.c=value)");
  EXPECT_NE(error_for("=3").find("missing field path"), std::string::npos);
}

TEST_F(ConfigLoaderTest, OverrideTypeMismatchNamesOverrideAndExpectedType) {
  auto error_for = [](const std::string& override_text) {
    return error_of([&] { load_config_text("", "empty.pbtxt", {override_text}); });
  };
  EXPECT_EQ(error_for("gist.levels=two"), "--set gist.levels=two: gist.levels expects a 64-bit integer, got \"two\"");
  EXPECT_EQ(error_for("gist.levels=1.5"), "--set gist.levels=1.5: gist.levels expects a 64-bit integer, got \"1.5\"");
  EXPECT_EQ(error_for("gist.levels="), "--set gist.levels=: gist.levels expects a 64-bit integer, got \"\"");
  EXPECT_EQ(error_for("train.lr=fast"), "--set train.lr=fast: train.lr expects a number, got \"fast\"");
  EXPECT_EQ(error_for("model.tie_embeddings=yes"),
            "--set model.tie_embeddings=yes: model.tie_embeddings expects a bool (true, false, 1 or 0), got \"yes\"");
  EXPECT_EQ(error_for("model.dtype=fp16"),
            "--set model.dtype=fp16: model.dtype expects one of FLOAT32, BFLOAT16, got \"fp16\"");
}

TEST_F(ConfigLoaderTest, OverrideOutOfRangeNamesTheOverride) {
  const std::string path = write("levels.pbtxt", "gist {\n  levels: 1\n}\n");
  EXPECT_EQ(error_of([&] { load_config_file(path, {"gist.levels=9"}); }),
            "--set gist.levels=9: gist.levels = 9 is out of range (1..4)");
  // The file's own bad value still names its line; the override's names the override.
  const std::string both = write("both.pbtxt", "gist {\n  levels: 7\n}\n");
  const std::string message = error_of([&] { load_config_file(both, {"train.beta1=1.5"}); });
  EXPECT_NE(message.find(both + ":2:3: gist.levels = 7"), std::string::npos) << message;
  EXPECT_NE(message.find("--set train.beta1=1.5: train.beta1 = 1.5 is out of range ([0, 1))"), std::string::npos)
      << message;
  // An override that repairs the file's bad value makes it load.
  EXPECT_EQ(load_config_file(both, {"gist.levels=2"}).gist.levels, 2);
}

TEST_F(ConfigLoaderTest, MissingFileNamesThePath) {
  const std::string path = (dir_ / "absent.pbtxt").string();
  EXPECT_EQ(error_of([&] { load_config_file(path); }).rfind(path + ": cannot open the config file", 0), 0u);
}

TEST_F(ConfigLoaderTest, EmptyFileAndDirectoryAreRefused) {
  for (const char* text : {"", "\n  \n", "# only a comment\n  # and another\n"}) {
    const std::string path = write("empty.pbtxt", text);
    EXPECT_EQ(error_of([&] { load_config_file(path); }).rfind(path + ": the config file is empty (no field is set", 0),
              0u)
        << "text: '" << text << "'";
  }
  EXPECT_EQ(load_config_file(write("one.pbtxt", "# a comment\ntrain { steps: 7 }\n")).train.steps, 7);
  EXPECT_EQ(error_of([&] { load_config_file(dir_.string()); }),
            dir_.string() + ": is a directory, not a config file (give the .pbtxt file)");
}

TEST_F(ConfigLoaderTest, FirstSelectiveLayerBeyondTheLastLayerIsRefused) {
  const std::string path = write("layers.pbtxt", "model {\n  num_layers: 2\n}\nattention {\n  selection {\n"
                                                 "    first_selective_layer: 2\n  }\n}\n");
  const std::string message = error_of([&] { load_config_file(path); });
  EXPECT_NE(message.find("attention.selection.first_selective_layer = 2 is beyond the last layer "
                         "(model.num_layers = 2: layers 0..1;"),
            std::string::npos)
      << message;
  EXPECT_EQ(message.rfind(path + ":", 0), 0u) << message;
  EXPECT_EQ(load_config_file(path, {"attention.selection.first_selective_layer=1"})
                .attention.selection.first_selective_layer,
            1);
  const std::string overridden = error_of(
      [&] { load_config_file(path, {"model.num_layers=1", "attention.selection.first_selective_layer=1"}); });
  EXPECT_EQ(overridden.rfind("--set ", 0), 0u) << overridden;
}

TEST_F(ConfigLoaderTest, CorpusRulesAreChecked) {
  const std::string corpus = error_loading("corpus.pbtxt", "data {\n  source: TOKEN_BIN\n}\n");
  EXPECT_NE(corpus.find("data.source reads a corpus file but data.corpus.path is empty"), std::string::npos) << corpus;
  const GsaOptions ok = load_config_file(write("bin.pbtxt", "data {\n  source: TOKEN_BIN\n  corpus {\n"
                                                           "    path: \"x.bin\"\n    bin_dtype: UINT32\n  }\n}\n"));
  EXPECT_EQ(ok.data.source, DataSourceKind::kTokenBin);
  EXPECT_EQ(ok.data.corpus.bin_dtype, TokenFileDType::kUint32);
  EXPECT_EQ(ok.data.corpus.path, "x.bin");
}

// The digits recipe of data.multi_doc (multi_doc_rules.h): a good config loads; each bad field or combination
// fails naming the field, at its line in the file or at its --set override.
TEST_F(ConfigLoaderTest, MultiDocRecipeRulesAreChecked) {
  const std::string recipe =
      "data {\n"
      "  source: MULTI_DOC\n"
      "  multi_doc {\n"
      "    documents: 16\n"
      "    pairs_per_document: 3\n"
      "    key_len: 1\n"
      "    value_len: 1\n"
      "    alphabet: 52\n"
      "    digit_values: true\n"
      "    packed_pairs: true\n"
      "    compact: true\n"
      "    pair_width: 8\n"
      "    filler: 48\n"
      "    questions: 3\n"
      "    copy_fraction: 0.5\n"
      "    copy_min_length: 8\n"
      "    copy_max_length: 32\n"
      "  }\n"
      "}\n";
  const std::string path = write("recipe.pbtxt", recipe);
  const MultiDocTaskOptions m = load_config_file(path).data.multi_doc;
  EXPECT_EQ(m.alphabet, 52);
  EXPECT_TRUE(m.digit_values);
  EXPECT_TRUE(m.packed_pairs);
  EXPECT_EQ(m.filler, 48);
  EXPECT_EQ(m.copy_fraction, 0.5);
  EXPECT_EQ(m.copy_min_length, 8);
  EXPECT_EQ(m.copy_max_length, 32);
  EXPECT_FALSE(m.copy_in_context);
  EXPECT_TRUE(load_config_file(path, {"data.multi_doc.copy_in_context=true"}).data.multi_doc.copy_in_context);
  EXPECT_FALSE(m.copy_digits);
  EXPECT_TRUE(load_config_file(path, {"data.multi_doc.copy_digits=true"}).data.multi_doc.copy_digits);
  // Each bad case: the overrides and the start of the error line.
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"data.multi_doc.digit_values=false"},
       "--set data.multi_doc.digit_values=false: data.multi_doc.alphabet = 52 is above 26, which needs "
       "data.multi_doc.digit_values: true"},
      {{"data.multi_doc.alphabet=53"},
       "--set data.multi_doc.alphabet=53: data.multi_doc.alphabet = 53 is out of range (2..52)"},
      {{"data.multi_doc.upper_case_values=true"},
       "--set data.multi_doc.upper_case_values=true: data.multi_doc.digit_values and "
       "data.multi_doc.upper_case_values are both true"},
      {{"data.multi_doc.compact=false"},
       "--set data.multi_doc.compact=false: data.multi_doc.packed_pairs needs data.multi_doc.compact: true"},
      {{"data.multi_doc.pair_width=0"},
       "--set data.multi_doc.pair_width=0: data.multi_doc.packed_pairs needs data.multi_doc.pair_width > 0"},
      {{"data.multi_doc.documents=18"},
       "--set data.multi_doc.documents=18: data.multi_doc.documents x pairs_per_document = 54 distinct keys need "
       "alphabet^key_len >= 54 (got 52)"},
      {{"data.multi_doc.key_len=8"},
       "--set data.multi_doc.key_len=8: data.multi_doc.pair_width = 8 is narrower than 9 characters (a pair "
       "<key><value> or the header \"#15|\")"},
      {{"data.multi_doc.key_len=2", "data.multi_doc.pair_width=3"},
       "--set data.multi_doc.pair_width=3: data.multi_doc.pair_width = 3 is narrower than 4 characters (a pair "
       "<key><value> or the header \"#15|\")"},
      {{"data.multi_doc.filler=-1"},
       "--set data.multi_doc.filler=-1: data.multi_doc.filler = -1 is out of range (>= 0)"},
      {{"data.multi_doc.copy_fraction=1.5"},
       "--set data.multi_doc.copy_fraction=1.5: data.multi_doc.copy_fraction = 1.5 is out of range ([0, 1])"},
      {{"data.multi_doc.copy_min_length=1"},
       "--set data.multi_doc.copy_min_length=1: data.multi_doc.copy_min_length = 1 is out of range (>= 2)"},
      {{"data.multi_doc.copy_max_length=7"},
       "--set data.multi_doc.copy_max_length=7: data.multi_doc.copy_max_length = 7 is below "
       "data.multi_doc.copy_min_length = 8"},
      {{"data.multi_doc.copy_digits=true", "data.multi_doc.digit_values=false", "data.multi_doc.alphabet=26",
        "data.multi_doc.documents=8"},
       "--set data.multi_doc.digit_values=false: data.multi_doc.copy_digits needs data.multi_doc.digit_values"},
      {{"data.multi_doc.min_documents=1", "data.multi_doc.questions=4"},
       "--set data.multi_doc.questions=4: data.multi_doc.questions = 4: 4 questions about distinct keys need at least "
       "4 pairs, but an example may have 3"},
  };
  for (const auto& [overrides, expected] : bad) {
    const std::string message = error_of([&] { load_config_file(path, overrides); });
    EXPECT_EQ(message.rfind(expected, 0), 0u) << message;
    EXPECT_EQ(std::count(message.begin(), message.end(), '\n'), 0) << message;  // one rule broken, one line
  }
  // In the file: the line of the field (the latest of the rule's fields there).
  std::string loose = recipe;
  loose.replace(loose.find("    compact: true\n"), 18, "    compact: false\n");
  const std::string in_file = error_loading("loose.pbtxt", loose);
  EXPECT_NE(in_file.find("loose.pbtxt:11:5: data.multi_doc.packed_pairs needs data.multi_doc.compact: true"),
            std::string::npos)
      << in_file;
  std::string letters = recipe;
  letters.replace(letters.find("    digit_values: true\n"), 23, "");
  const std::string wide = error_loading("letters.pbtxt", letters);
  EXPECT_NE(wide.find("letters.pbtxt:8:5: data.multi_doc.alphabet = 52 is above 26"), std::string::npos) << wide;
}

TEST_F(ConfigLoaderTest, OptionsToTextRoundTrips) {
  GsaOptions original = load_config_file((kConfigsDir / "llama-1b-gsa.pbtxt").string());
  original.train.lr = 0.1 + 0.2;  // needs all 17 digits
  original.model.rms_norm_eps = 1e-7;
  original.model.init_std = 1.0 / 3.0;
  original.train.output_dir = "runs/\"quoted\" \\ dir\twith\nnewline";
  original.train.seed = -42;
  original.attention.selection.budget = BudgetKind::kFixed;
  original.attention.selection.keep_unselected_gists = true;
  original.gist.word_aware = true;
  original.data.source = DataSourceKind::kJsonl;
  original.data.tokenizer = "tok/tokenizer.json";
  original.data.corpus.path = "data/train.jsonl";
  original.data.corpus.jsonl_field = "body";
  original.data.corpus.bin_dtype = TokenFileDType::kUint32;
  original.data.corpus.bin_document_separator = 50256;
  original.data.multi_doc.documents = 12;
  original.data.multi_doc.copy_fraction = 1.0 / 3.0;
  original.data.multi_doc.copy_in_context = true;
  original.data.multi_doc.digit_values = true;  // copy_digits needs it
  original.data.multi_doc.copy_digits = true;
  original.data.multi_doc.filler = 5;
  original.data.passkey.digits = 7;
  original.train.grad_accumulation = 4;
  original.train.activation_checkpointing = true;
  original.model.dtype = DType::kBFloat16;
  original.train.master_weights = DType::kBFloat16;  // pure bf16: not the default, so the round trip shows it
  original.train.decay_fraction = 1.0 / 6.0;
  const std::string text = options_to_text(original);
  expect_options_eq(load_config_text(text, "roundtrip.pbtxt"), original);
  // Text -> options -> text is stable too.
  EXPECT_EQ(options_to_text(load_config_text(text, "roundtrip.pbtxt")), text);

  expect_options_eq(load_config_text(options_to_text(GsaOptions{}), "defaults.pbtxt"), GsaOptions{});
  for (const char* name : {"demo.pbtxt", "tiny-2level.pbtxt", "tiny-retrieval.pbtxt"}) {
    const GsaOptions shipped = load_config_file((kConfigsDir / name).string());
    expect_options_eq(load_config_text(options_to_text(shipped), name), shipped);
  }
}

}  // namespace
}  // namespace gsa
