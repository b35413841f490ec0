// gsa export: a gsa checkpoint as a Hugging Face folder (contract in gsa/runtime/hf_checkpoint.h).
#include <algorithm>
#include <cstdio>
#include <vector>

#include "gsa/config/config_loader.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/file_util.h"
#include "gsa/runtime/hf_checkpoint.h"
#include "gsa/runtime/hf_tokenizer.h"
#include "gsa/runtime/llama_model.h"
#include "hf_config.h"
#include "gsa/runtime/json_reader.h"
#include "json_writer.h"

namespace gsa {
namespace {

json::Value make_object() {
  json::Value v;
  v.kind = json::Value::Kind::kObject;
  return v;
}

json::Value make_array() {
  json::Value v;
  v.kind = json::Value::Kind::kArray;
  return v;
}

// tokenizer.json text with every gist token it lacks added as a special added token at its id.
std::string tokenizer_with_gists(const std::string& text, const std::string& source, const HfTokenizer& tokenizer,
                                 const std::vector<int64_t>& gist_ids) {
  json::Value spec = json::parse_json(text);
  GSA_CHECK(spec.is_object(), source, ": not a JSON object");
  auto added_tokens = [&]() -> json::Value* {
    for (auto& [key, value] : spec.object_items) {
      if (key == "added_tokens") return &value;
    }
    return nullptr;
  };
  json::Value* added = added_tokens();
  if (added == nullptr || added->kind == json::Value::Kind::kNull) {
    json::set_member(spec, "added_tokens", make_array());
    added = added_tokens();
  }
  GSA_CHECK(added->is_array(), source, ": added_tokens is not an array");
  for (size_t l = 0; l < gist_ids.size(); ++l) {
    if (tokenizer.gist_in_file(static_cast<int64_t>(l))) continue;
    const std::string name = HfTokenizer::gist_token_name(static_cast<int64_t>(l));
    json::Value token = make_object();
    json::set_member(token, "id", json::make_integer(gist_ids[l]));
    json::set_member(token, "content", json::make_string(name));
    json::set_member(token, "single_word", json::make_bool(false));
    json::set_member(token, "lstrip", json::make_bool(false));
    json::set_member(token, "rstrip", json::make_bool(false));
    json::set_member(token, "normalized", json::make_bool(false));
    json::set_member(token, "special", json::make_bool(true));
    added->array_items.push_back(std::move(token));
  }
  return json::write_json(spec) + "\n";
}

// tokenizer_config.json: the fast tokenizer class, BOS/EOS by text, the gist tokens as additional specials.
std::string tokenizer_config(const HfTokenizer& tokenizer, int64_t gist_tokens) {
  json::Value c = make_object();
  json::set_member(c, "tokenizer_class", json::make_string("PreTrainedTokenizerFast"));
  const auto bos = tokenizer.bos_id(), eos = tokenizer.eos_id();
  json::set_member(c, "bos_token", bos ? json::make_string(tokenizer.decode({*bos})) : json::make_null());
  json::set_member(c, "eos_token", eos ? json::make_string(tokenizer.decode({*eos})) : json::make_null());
  json::Value extra = make_array();
  for (int64_t l = 0; l < gist_tokens; ++l)
    extra.array_items.push_back(json::make_string(HfTokenizer::gist_token_name(l)));
  json::set_member(c, "additional_special_tokens", extra);
  return json::write_json(c) + "\n";
}

std::string shard_name(size_t i, size_t n) {
  char name[64];
  std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", i + 1, n);
  return name;
}

}  // namespace

void export_hf_model(const std::string& checkpoint_path, const std::string& out, const HfExportOptions& options) {
  GSA_CHECK(options.max_shard_bytes >= 1, "max shard size must be >= 1 byte, got ", options.max_shard_bytes);
  GSA_CHECK(!path_exists(out) || (is_directory(out) && list_directory(out).empty()), "--out '", out,
            "' exists and is not an empty folder");
  const std::string dir = resolve_checkpoint(checkpoint_path);
  Checkpoint checkpoint = load_checkpoint_dir(dir, /*with_optimizer=*/false);
  const GsaOptions run = load_config_text(checkpoint.config_text, join_path(dir, "config.pbtxt"));
  const ModelOptions& model = run.model;
  check_llama_tensors(model, checkpoint.model, join_path(dir, "model.safetensors"));
  GSA_CHECK(!model.gist_token_ids.empty(), dir, ": the model has no gist token ids (model.gist_token_ids): only a ",
            "checkpoint made by gsa import, or trained from one, has a Hugging Face tokenizer to export");

  std::string tokenizer_text = checkpoint.tokenizer_json, tokenizer_source = join_path(dir, "tokenizer.json");
  if (!options.tokenizer_path.empty()) {
    tokenizer_text = read_file(options.tokenizer_path);
    tokenizer_source = options.tokenizer_path;
  }
  GSA_CHECK(!tokenizer_text.empty(), dir, ": the checkpoint has no tokenizer.json; pass --tokenizer FILE");
  HfTokenizerOptions tokenizer_options;
  tokenizer_options.gist_levels = std::max<int64_t>(3, static_cast<int64_t>(model.gist_token_ids.size()));
  const HfTokenizer tokenizer = HfTokenizer::from_json(tokenizer_text, tokenizer_source, {}, tokenizer_options);
  for (size_t l = 0; l < model.gist_token_ids.size(); ++l) {
    GSA_CHECK(tokenizer.gist_id(static_cast<int64_t>(l)) == model.gist_token_ids[l], tokenizer_source, ": gives ",
              HfTokenizer::gist_token_name(static_cast<int64_t>(l)), " id ", tokenizer.gist_id(static_cast<int64_t>(l)),
              " but the model's gist id is ", model.gist_token_ids[l], " (not this model's tokenizer)");
  }
  GSA_CHECK(tokenizer.vocab_size() <= model.vocab_size, tokenizer_source, ": has ids up to ",
            tokenizer.vocab_size() - 1, ", beyond the model's vocab_size ", model.vocab_size);

  // Shards in name order.
  std::vector<TensorMap> shards(1);
  int64_t shard_bytes = 0, total_bytes = 0;
  for (const auto& [name, t] : checkpoint.model) {
    const at::Tensor w = t.to(to_scalar_type(model.dtype)).contiguous();
    const int64_t bytes = w.numel() * static_cast<int64_t>(w.element_size());
    if (!shards.back().empty() && shard_bytes + bytes > options.max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back()[name] = w;
    shard_bytes += bytes;
    total_bytes += bytes;
  }

  make_directories(out);
  write_file_atomic(join_path(out, "config.json"), hf_config_json(model, tokenizer.bos_id(), tokenizer.eos_id()));
  write_file_atomic(join_path(out, "tokenizer.json"),
                    tokenizer_with_gists(tokenizer_text, tokenizer_source, tokenizer, model.gist_token_ids));
  write_file_atomic(join_path(out, "tokenizer_config.json"),
                    tokenizer_config(tokenizer, static_cast<int64_t>(model.gist_token_ids.size())));
  const MetadataMap metadata{{"format", "pt"}};
  if (shards.size() == 1) {
    save_safetensors(join_path(out, "model.safetensors"), shards[0], metadata);
  } else {
    json::Value weight_map = make_object();
    for (size_t i = 0; i < shards.size(); ++i) {
      save_safetensors(join_path(out, shard_name(i, shards.size())), shards[i], metadata);
      for (const auto& [name, t] : shards[i])
        json::set_member(weight_map, name, json::make_string(shard_name(i, shards.size())));
    }
    json::Value index = make_object(), meta = make_object();
    json::set_member(meta, "total_size", json::make_integer(total_bytes));
    json::set_member(index, "metadata", meta);
    json::set_member(index, "weight_map", weight_map);
    write_file_atomic(join_path(out, "model.safetensors.index.json"), json::write_json(index) + "\n");
  }
  sync_directory(out);
}

}  // namespace gsa
