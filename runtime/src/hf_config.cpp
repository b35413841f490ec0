#include "hf_config.h"

#include <cmath>

#include "gsa/runtime/error.h"
#include "gsa/runtime/json_reader.h"
#include "json_writer.h"

namespace gsa {
namespace {

constexpr char kLlama[] = "LlamaForCausalLM";
constexpr char kQwen2[] = "Qwen2ForCausalLM";

// Reads keys of one config.json, naming the source and the key in every error.
class ConfigReader {
 public:
  ConfigReader(const json::Value& root, const std::string& source) : root_(root), source_(source) {}

  template <typename... Args>
  [[noreturn]] void fail(const Args&... args) const {
    throw Error(str_cat(source_, ": ", args...));
  }

  const json::Value* optional(const json::Value& object, const std::string& key) const {
    const json::Value* v = object.find(key);
    return v == nullptr || v->kind == json::Value::Kind::kNull ? nullptr : v;
  }
  const json::Value* optional(const std::string& key) const { return optional(root_, key); }

  int64_t integer(const json::Value& object, const std::string& key, const std::string& path) const {
    const json::Value* v = optional(object, key);
    if (v == nullptr) fail("missing key '", path, "'");
    if (!v->is_integer()) fail("key '", path, "' must be an integer, got ", json::kind_name(v->kind));
    return v->int_value;
  }
  int64_t integer(const std::string& key) const { return integer(root_, key, key); }

  double number(const json::Value& object, const std::string& key, const std::string& path) const {
    const json::Value* v = optional(object, key);
    if (v == nullptr) fail("missing key '", path, "'");
    if (v->kind == json::Value::Kind::kInteger) return static_cast<double>(v->int_value);
    if (v->kind != json::Value::Kind::kFloat) fail("key '", path, "' must be a number, got ", json::kind_name(v->kind));
    return v->float_value;
  }
  double number(const std::string& key) const { return number(root_, key, key); }

  bool boolean(const std::string& key) const {
    const json::Value* v = optional(key);
    if (v == nullptr) fail("missing key '", key, "'");
    if (v->kind != json::Value::Kind::kBool)
      fail("key '", key, "' must be true or false, got ", json::kind_name(v->kind));
    return v->bool_value;
  }
  // An optional boolean that gsa supports only at `supported` (transformers' default when absent).
  void only(const std::string& key, bool supported, const std::string& why) const {
    const json::Value* v = optional(key);
    if (v == nullptr) return;
    if (v->kind != json::Value::Kind::kBool)
      fail("key '", key, "' must be true or false, got ", json::kind_name(v->kind));
    if (v->bool_value != supported)
      fail("'", key, "': ", v->bool_value ? "true" : "false", " is not supported (", why, ")");
  }

 private:
  const json::Value& root_;
  std::string source_;
};

// The RoPE base and scaling: transformers 4 files have top-level rope_theta and rope_scaling (null or an object
// with rope_type or type), transformers 5 files one rope_parameters object holding all of it.
void read_rope(const ConfigReader& r, ModelOptions& o) {
  const json::Value* params = r.optional("rope_parameters");
  const json::Value* scaling = params != nullptr ? params : r.optional("rope_scaling");
  const std::string where = params != nullptr ? "rope_parameters" : "rope_scaling";
  if (r.optional("rope_theta") != nullptr) {
    o.rope_theta = r.number("rope_theta");
  } else if (params != nullptr) {
    o.rope_theta = r.number(*params, "rope_theta", "rope_parameters.rope_theta");
  } else {
    r.fail("missing key 'rope_theta' (or 'rope_parameters.rope_theta')");
  }
  if (scaling == nullptr) return;
  if (!scaling->is_object()) r.fail("key '", where, "' must be an object or null");
  const json::Value* type = r.optional(*scaling, "rope_type");
  if (type == nullptr) type = r.optional(*scaling, "type");
  if (type == nullptr || !type->is_string()) r.fail("key '", where, ".rope_type' missing or not a string");
  if (type->string_value == "default") return;
  if (type->string_value != "llama3") {
    r.fail("RoPE scaling '", type->string_value, "' (", where,
           ".rope_type) is not supported (supported: default, llama3)");
  }
  o.rope_scaling = RopeScaling::kLlama3;
  o.rope_scaling_factor = r.number(*scaling, "factor", where + ".factor");
  o.rope_low_freq_factor = r.number(*scaling, "low_freq_factor", where + ".low_freq_factor");
  o.rope_high_freq_factor = r.number(*scaling, "high_freq_factor", where + ".high_freq_factor");
  o.rope_original_max_position =
      r.integer(*scaling, "original_max_position_embeddings", where + ".original_max_position_embeddings");
  if (!(o.rope_scaling_factor > 0 && o.rope_low_freq_factor > 0 && o.rope_high_freq_factor > o.rope_low_freq_factor &&
        o.rope_original_max_position >= 1)) {
    r.fail(
        "llama3 RoPE scaling needs factor > 0, 0 < low_freq_factor < high_freq_factor and "
        "original_max_position_embeddings >= 1");
  }
}

}  // namespace

ModelOptions model_options_from_hf_config(const std::string& text, const std::string& source) {
  json::Value root;
  try {
    root = json::parse_json(text);
  } catch (const Error& e) {
    throw Error(str_cat(source, ": ", e.what()));
  }
  ConfigReader r(root, source);
  if (!root.is_object()) r.fail("expected a JSON object");
  const json::Value* archs = r.optional("architectures");
  if (archs == nullptr || !archs->is_array() || archs->array_items.size() != 1 || !archs->array_items[0].is_string()) {
    r.fail("key 'architectures' must list one architecture (supported: ", kLlama, ", ", kQwen2, ")");
  }
  const std::string& arch = archs->array_items[0].string_value;
  ModelOptions o;
  if (arch == kLlama) {
    o.architecture = Architecture::kLlama;
    r.only("attention_bias", false, "Llama with attention biases");
    r.only("mlp_bias", false, "Llama with MLP biases");
  } else if (arch == kQwen2) {
    o.architecture = Architecture::kQwen2;
    o.attention_bias = true;  // Qwen2's q/k/v projections always have biases
    r.only("use_sliding_window", false, "sliding-window attention");
  } else {
    r.fail("unsupported architecture '", arch, "' (supported: ", kLlama, ", ", kQwen2, ")");
  }
  o.vocab_size = r.integer("vocab_size");
  o.hidden_size = r.integer("hidden_size");
  o.intermediate_size = r.integer("intermediate_size");
  o.num_layers = r.integer("num_hidden_layers");
  o.num_heads = r.integer("num_attention_heads");
  o.num_kv_heads = r.integer("num_key_value_heads");
  o.rms_norm_eps = r.number("rms_norm_eps");
  o.max_position_embeddings = r.integer("max_position_embeddings");
  o.tie_embeddings = r.boolean("tie_word_embeddings");
  for (const char* key : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                          "num_key_value_heads", "max_position_embeddings"}) {
    if (r.integer(key) < 1) r.fail("key '", key, "' must be >= 1, got ", r.integer(key));
  }
  if (o.num_heads % o.num_kv_heads != 0) {
    r.fail("num_attention_heads ", o.num_heads, " is not a multiple of num_key_value_heads ", o.num_kv_heads);
  }
  if (r.optional("head_dim") != nullptr) {
    o.head_dim = r.integer("head_dim");
  } else {
    if (o.hidden_size % o.num_heads != 0) {
      r.fail("no 'head_dim' and hidden_size ", o.hidden_size, " is not a multiple of num_attention_heads ",
             o.num_heads);
    }
    o.head_dim = o.hidden_size / o.num_heads;  // transformers' default
  }
  if (o.head_dim < 2 || o.head_dim % 2 != 0) r.fail("head_dim ", o.head_dim, " must be even and >= 2 (RoPE pairs)");
  const json::Value* act = r.optional("hidden_act");
  if (act != nullptr && !(act->is_string() && act->string_value == "silu")) {
    r.fail("'hidden_act' must be \"silu\" (SwiGLU), got ",
           act->is_string() ? act->string_value : json::kind_name(act->kind));
  }
  read_rope(r, o);
  return o;
}

std::string hf_config_json(const ModelOptions& o, std::optional<int64_t> bos_id, std::optional<int64_t> eos_id) {
  const bool qwen2 = o.architecture == Architecture::kQwen2;
  GSA_CHECK(!qwen2 || o.head_dim * o.num_heads == o.hidden_size,
            "a Qwen2 model needs head_dim x num_heads == ", "hidden_size (", o.head_dim, " x ", o.num_heads,
            " != ", o.hidden_size, "): transformers' Qwen2 has no head_dim");
  GSA_CHECK(qwen2 == o.attention_bias, "model.attention_bias ", o.attention_bias, " does not fit architecture ",
            qwen2 ? "Qwen2 (always has q/k/v biases)" : "Llama (export supports it without biases)");
  json::Value c;
  c.kind = json::Value::Kind::kObject;
  json::Value archs;
  archs.kind = json::Value::Kind::kArray;
  archs.array_items.push_back(json::make_string(qwen2 ? kQwen2 : kLlama));
  json::set_member(c, "architectures", archs);
  json::set_member(c, "model_type", json::make_string(qwen2 ? "qwen2" : "llama"));
  json::set_member(c, "vocab_size", json::make_integer(o.vocab_size));
  json::set_member(c, "hidden_size", json::make_integer(o.hidden_size));
  json::set_member(c, "intermediate_size", json::make_integer(o.intermediate_size));
  json::set_member(c, "num_hidden_layers", json::make_integer(o.num_layers));
  json::set_member(c, "num_attention_heads", json::make_integer(o.num_heads));
  json::set_member(c, "num_key_value_heads", json::make_integer(o.num_kv_heads));
  if (!qwen2) json::set_member(c, "head_dim", json::make_integer(o.head_dim));
  json::set_member(c, "hidden_act", json::make_string("silu"));
  json::set_member(c, "max_position_embeddings", json::make_integer(o.max_position_embeddings));
  json::set_member(c, "rms_norm_eps", json::make_float(o.rms_norm_eps));
  json::set_member(c, "rope_theta", json::make_float(o.rope_theta));
  if (o.rope_scaling == RopeScaling::kLlama3) {
    json::Value s;
    s.kind = json::Value::Kind::kObject;
    json::set_member(s, "rope_type", json::make_string("llama3"));
    json::set_member(s, "factor", json::make_float(o.rope_scaling_factor));
    json::set_member(s, "low_freq_factor", json::make_float(o.rope_low_freq_factor));
    json::set_member(s, "high_freq_factor", json::make_float(o.rope_high_freq_factor));
    json::set_member(s, "original_max_position_embeddings", json::make_integer(o.rope_original_max_position));
    json::set_member(c, "rope_scaling", s);
  } else {
    json::set_member(c, "rope_scaling", json::make_null());
  }
  json::set_member(c, "tie_word_embeddings", json::make_bool(o.tie_embeddings));
  if (qwen2) {
    json::set_member(c, "use_sliding_window", json::make_bool(false));
  } else {
    json::set_member(c, "attention_bias", json::make_bool(false));
    json::set_member(c, "mlp_bias", json::make_bool(false));
  }
  json::set_member(c, "torch_dtype", json::make_string(o.dtype == DType::kBFloat16 ? "bfloat16" : "float32"));
  json::set_member(c, "bos_token_id", bos_id ? json::make_integer(*bos_id) : json::make_null());
  json::set_member(c, "eos_token_id", eos_id ? json::make_integer(*eos_id) : json::make_null());
  return json::write_json(c) + "\n";
}

}  // namespace gsa
