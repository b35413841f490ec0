// gsa import: a Hugging Face Llama / Qwen2 folder into a gsa checkpoint (contract in gsa/runtime/hf_checkpoint.h).
#include <algorithm>
#include <map>
#include <vector>

#include "gsa/config/config_loader.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/file_util.h"
#include "gsa/runtime/hf_checkpoint.h"
#include "gsa/runtime/hf_tokenizer.h"
#include "gsa/runtime/llama_model.h"
#include "hf_config.h"
#include "gsa/runtime/json_reader.h"

namespace gsa {
namespace {

constexpr char kIndexFile[] = "model.safetensors.index.json";
constexpr char kSingleFile[] = "model.safetensors";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

json::Value parse_file(const std::string& path) {
  GSA_CHECK(path_exists(path), path, ": missing");
  try {
    return json::parse_json(read_file(path));
  } catch (const Error& e) {
    throw Error(str_cat(path, ": ", e.what()));
  }
}

// tensor name -> shard file, from the index.
std::map<std::string, std::string> read_weight_map(const std::string& index_path) {
  const json::Value index = parse_file(index_path);
  const json::Value* map = index.find("weight_map");
  GSA_CHECK(map != nullptr && map->is_object(), index_path, ": no \"weight_map\" object");
  std::map<std::string, std::string> out;
  for (const auto& [name, file] : map->object_items) {
    GSA_CHECK(file.is_string(), index_path, ": weight_map[\"", name, "\"] is not a file name");
    GSA_CHECK(file.string_value.find('/') == std::string::npos, index_path, ": shard '", file.string_value,
              "' is not a file name in the folder");
    out[name] = file.string_value;
  }
  GSA_CHECK(!out.empty(), index_path, ": weight_map is empty");
  return out;
}

// Every weight of the folder (sharded through the index, or one file), floating dtypes only.
TensorMap read_weights(const std::string& dir) {
  const std::string index_path = join_path(dir, kIndexFile);
  TensorMap out;
  std::map<std::string, std::string> origin;  // tensor -> file, for error messages
  if (path_exists(index_path)) {
    const std::map<std::string, std::string> weight_map = read_weight_map(index_path);
    std::map<std::string, std::vector<std::string>> by_file;
    for (const auto& [name, file] : weight_map) by_file[file].push_back(name);
    for (const auto& [file, names] : by_file) {
      const std::string path = join_path(dir, file);
      GSA_CHECK(path_exists(path), dir, ": missing shard '", file, "' (", kIndexFile, " maps ", names.size(),
                " tensors to it, e.g. '", names.front(), "')");
      TensorMap shard = load_safetensors(path);
      for (const auto& [name, t] : shard) {
        auto it = weight_map.find(name);
        GSA_CHECK(it != weight_map.end() && it->second == file, path, ": tensor '", name, "' is ",
                  it == weight_map.end() ? std::string("not in ") + kIndexFile
                                         : str_cat("mapped to '", it->second, "' by ", kIndexFile));
      }
      for (const std::string& name : names) {
        GSA_CHECK(shard.count(name) == 1, path, ": lacks tensor '", name, "', which ", kIndexFile, " maps to it");
        out[name] = shard.at(name);
        origin[name] = path;
      }
    }
  } else {
    const std::string path = join_path(dir, kSingleFile);
    GSA_CHECK(path_exists(path), dir, ": no ", kSingleFile, " and no ", kIndexFile);
    out = load_safetensors(path);
    for (const auto& [name, t] : out) origin[name] = path;
  }
  for (auto it = out.begin(); it != out.end();) {
    if (ends_with(it->first, "rotary_emb.inv_freq")) {  // a buffer old transformers versions saved
      it = out.erase(it);
      continue;
    }
    const at::ScalarType dtype = it->second.scalar_type();
    GSA_CHECK(dtype == at::kFloat || dtype == at::kHalf || dtype == at::kBFloat16 || dtype == at::kDouble,
              origin[it->first], ": tensor '", it->first, "' has dtype ", dtype,
              "; weights must be floating point (F32, F16, BF16 or F64)");
    ++it;
  }
  return out;
}

// Grows the [V, H] matrix to new_vocab rows and sets rows `ids` to the mean of rows [0, mean_rows).
at::Tensor with_gist_rows(const at::Tensor& weight, int64_t new_vocab, const std::vector<int64_t>& ids,
                          int64_t mean_rows) {
  at::Tensor grown = weight;
  if (new_vocab > weight.size(0)) {
    grown = at::cat({weight, at::zeros({new_vocab - weight.size(0), weight.size(1)}, weight.options())}, 0);
  } else {
    grown = weight.clone();
  }
  at::Tensor mean = weight.narrow(0, 0, mean_rows).to(at::kFloat).mean(0).to(weight.scalar_type());  // [H]
  for (int64_t id : ids) grown[id].copy_(mean);
  return grown.contiguous();
}

}  // namespace

Checkpoint read_hf_model(const std::string& dir, const HfImportOptions& options) {
  GSA_CHECK(is_directory(dir), "'", dir, "' is not a folder (gsa import --hf wants a Hugging Face model folder)");
  const std::string config_path = join_path(dir, "config.json");
  GSA_CHECK(path_exists(config_path), dir, ": no config.json");
  ModelOptions model = model_options_from_hf_config(read_file(config_path), config_path);
  const std::string tokenizer_path = join_path(dir, "tokenizer.json");
  GSA_CHECK(path_exists(tokenizer_path), dir, ": no tokenizer.json (gsa import needs the model's tokenizer)");

  TensorMap tensors = read_weights(dir);
  if (model.tie_embeddings) tensors.erase("lm_head.weight");
  check_llama_tensors(model, tensors, dir);
  bool all_bf16 = true;
  for (const auto& [name, t] : tensors) all_bf16 = all_bf16 && t.scalar_type() == at::kBFloat16;
  model.dtype = options.dtype ? *options.dtype : all_bf16 ? DType::kBFloat16 : DType::kFloat32;
  for (auto& [name, t] : tensors) t = t.to(to_scalar_type(model.dtype)).contiguous();  // the mean in this dtype

  // Gist tokens: the tokenizer's ids; rows for those the file did not have.
  HfTokenizerOptions tokenizer_options;
  tokenizer_options.gist_levels = std::max<int64_t>(3, options.gist.levels);
  const HfTokenizer tokenizer(tokenizer_path, tokenizer_options);
  std::vector<int64_t> added;
  model.gist_token_ids.clear();
  for (int64_t l = 0; l < tokenizer.max_gist_levels(); ++l) {
    model.gist_token_ids.push_back(tokenizer.gist_id(l));
    if (!tokenizer.gist_in_file(l)) added.push_back(tokenizer.gist_id(l));
  }
  const int64_t old_vocab = model.vocab_size;
  const int64_t first_added = added.empty() ? tokenizer.vocab_size() : *std::min_element(added.begin(), added.end());
  GSA_CHECK(first_added <= old_vocab, tokenizer_path, ": has token ids up to ", first_added - 1,
            " but config.json's vocab_size is ", old_vocab, " (tokenizer and model do not match)");
  const int64_t new_vocab = std::max(old_vocab, tokenizer.vocab_size());
  for (const char* name : {"model.embed_tokens.weight", "lm_head.weight"}) {
    auto it = tensors.find(name);
    if (it != tensors.end()) it->second = with_gist_rows(it->second, new_vocab, added, first_added);
  }
  model.vocab_size = new_vocab;

  GsaOptions run;
  run.model = model;
  run.gist = options.gist;
  Checkpoint checkpoint;
  checkpoint.state.step = 0;
  checkpoint.config_text = options_to_text(run);
  load_config_text(checkpoint.config_text, dir + " (imported config)");  // validates every field
  checkpoint.model = std::move(tensors);
  checkpoint.tokenizer_json = read_file(tokenizer_path);
  return checkpoint;
}

std::string import_hf_model(const std::string& dir, const std::string& out, const HfImportOptions& options) {
  GSA_CHECK(!path_exists(out) || (is_directory(out) && list_directory(out).empty()), "--out '", out,
            "' exists and is not an empty folder");
  const Checkpoint checkpoint = read_hf_model(dir, options);
  return CheckpointStore(out).save(checkpoint, 0);
}

}  // namespace gsa
