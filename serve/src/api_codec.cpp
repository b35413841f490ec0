#include "gsa/serve/api_codec.h"

#include <cmath>
#include <set>
#include <sstream>

#include "gsa/runtime/error.h"
#include "gsa/runtime/json_reader.h"

namespace gsa::serve {
namespace {

using json::Value;

// OpenAI request fields the server does not implement: named as such instead of "unknown".
const std::set<std::string_view> kUnsupported = {
    "logprobs", "top_logprobs", "echo", "best_of", "suffix", "frequency_penalty", "presence_penalty",
    "logit_bias", "tools", "tool_choice", "functions", "function_call", "response_format", "parallel_tool_calls",
    "audio", "modalities", "prediction", "reasoning_effort", "service_tier", "store", "metadata"};

ApiError bad(std::string message, std::string param) {
  ApiError e;
  e.message = std::move(message);
  e.param = std::move(param);
  return e;
}

std::string type_error(std::string_view field, const char* want, const Value& got) {
  return str_cat("'", field, "' must be ", want, ", got ", json::kind_name(got.kind));
}

bool is_number(const Value& v) { return v.kind == Value::Kind::kInteger || v.kind == Value::Kind::kFloat; }
double number(const Value& v) { return v.kind == Value::Kind::kInteger ? double(v.int_value) : v.float_value; }

// Reads one field into the call; returns an error message ("" = fine).
std::optional<ApiError> read_field(const std::string& key, const Value& v, bool chat, CompletionCall* call,
                                   const Value** messages, bool* has_stream_options) {
  auto want = [&](bool ok, const char* type) -> std::optional<ApiError> {
    if (ok) return std::nullopt;
    return bad(type_error(key, type, v), key);
  };
  if (key == "model") {
    if (auto e = want(v.is_string(), "a string")) return e;
    call->model = v.string_value;
  } else if (key == "prompt" && !chat) {
    if (v.is_array()) return bad("'prompt' must be a string: arrays of prompts or token ids are not supported", key);
    if (auto e = want(v.is_string(), "a string")) return e;
    call->prompt = v.string_value;
  } else if (key == "messages" && chat) {
    if (auto e = want(v.is_array(), "an array")) return e;
    *messages = &v;
  } else if (key == "context") {
    if (auto e = want(v.is_string(), "a string")) return e;
    call->context = v.string_value;
  } else if (key == "max_tokens" || (chat && key == "max_completion_tokens")) {
    if (auto e = want(v.is_integer(), "an integer")) return e;
    if (v.int_value < 1) return bad(str_cat("'", key, "' must be >= 1, got ", v.int_value), key);
    call->max_tokens = v.int_value;
  } else if (key == "temperature") {
    if (auto e = want(is_number(v), "a number")) return e;
    const double t = number(v);
    if (!(t >= 0 && t <= 2)) return bad(str_cat("'temperature' must be in [0, 2], got ", t), key);
    call->temperature = t;
  } else if (key == "top_p") {
    if (auto e = want(is_number(v), "a number")) return e;
    const double p = number(v);
    if (!(p > 0 && p <= 1)) return bad(str_cat("'top_p' must be in (0, 1], got ", p), key);
    call->top_p = p;
  } else if (key == "seed") {
    if (auto e = want(v.is_integer(), "an integer")) return e;
    call->seed = v.int_value;
  } else if (key == "stop") {
    std::vector<const Value*> items;
    if (v.is_string()) {
      items.push_back(&v);
    } else if (v.is_array()) {
      for (const Value& item : v.array_items) items.push_back(&item);
      if (items.empty() || items.size() > 4) return bad("'stop' must hold 1 to 4 strings", key);
    } else {
      return bad(type_error(key, "a string or an array of strings", v), key);
    }
    for (const Value* item : items) {
      if (!item->is_string()) return bad(type_error("stop[]", "a string", *item), key);
      if (item->string_value.empty()) return bad("'stop' sequences must not be empty", key);
      call->stop.push_back(item->string_value);
    }
  } else if (key == "stream") {
    if (auto e = want(v.kind == Value::Kind::kBool, "a boolean")) return e;
    call->stream = v.bool_value;
  } else if (key == "stream_options") {
    if (auto e = want(v.is_object(), "an object")) return e;
    for (const auto& [name, option] : v.object_items) {
      if (name != "include_usage") return bad(str_cat("unknown field 'stream_options.", name, "'"), key);
      if (option.kind != Value::Kind::kBool) return bad(type_error("stream_options.include_usage", "a boolean", option), key);
      call->stream_include_usage = option.bool_value;
    }
    *has_stream_options = true;
  } else if (key == "n") {
    if (auto e = want(v.is_integer(), "an integer")) return e;
    if (v.int_value != 1) return bad(str_cat("'n' must be 1 (one choice per request), got ", v.int_value), key);
  } else if (key == "user") {
    if (auto e = want(v.is_string(), "a string")) return e;
  } else if (kUnsupported.count(key) != 0) {
    return bad(str_cat("'", key, "' is not supported by this server"), key);
  } else {
    return bad(str_cat("unknown field '", key, "'"), key);
  }
  return std::nullopt;
}

std::optional<ApiError> render_chat(const Value& messages, CompletionCall* call) {
  if (messages.array_items.empty()) return bad("'messages' must not be empty", "messages");
  std::string before;
  for (size_t i = 0; i < messages.array_items.size(); ++i) {
    const Value& m = messages.array_items[i];
    const std::string at = str_cat("messages[", i, "]");
    if (!m.is_object()) return bad(type_error(at, "an object", m), "messages");
    const Value* role = nullptr;
    const Value* content = nullptr;
    for (const auto& [name, field] : m.object_items) {
      if (name == "role") {
        role = &field;
      } else if (name == "content") {
        content = &field;
      } else if (name != "name") {
        return bad(str_cat("unknown field '", at, ".", name, "'"), "messages");
      }
    }
    if (role == nullptr || !role->is_string()) return bad(str_cat(at, ".role must be a string"), "messages");
    const std::string& r = role->string_value;
    if (r != "system" && r != "user" && r != "assistant" && r != "developer") {
      return bad(str_cat(at, ".role must be system, developer, user or assistant, got '", r, "'"), "messages");
    }
    if (content == nullptr || !content->is_string()) {
      return bad(str_cat(at, ".content must be a string (content parts are not supported)"), "messages");
    }
    const std::string line = str_cat(r, ": ", content->string_value, "\n");
    if (i + 1 < messages.array_items.size()) {
      before += line;
    } else {
      call->context += before;
      call->prompt = line + "assistant: ";
    }
  }
  return std::nullopt;
}

// Appends "key":value pairs; values are already JSON.
class ObjectWriter {
 public:
  ObjectWriter& raw(std::string_view key, std::string_view json_value) {
    out_ += out_.size() > 1 ? "," : "";
    out_ += json::quote_json(key);
    out_ += ':';
    out_ += json_value;
    return *this;
  }
  ObjectWriter& str(std::string_view key, std::string_view value) { return raw(key, json::quote_json(value)); }
  ObjectWriter& num(std::string_view key, int64_t value) { return raw(key, std::to_string(value)); }
  std::string done() { return out_ + "}"; }

 private:
  std::string out_ = "{";
};

std::string null_or_quoted(const std::string& s) { return s.empty() ? "null" : json::quote_json(s); }

std::string usage_json(const CompletionUsage& usage) {
  return ObjectWriter()
      .num("prompt_tokens", usage.prompt_tokens)
      .num("completion_tokens", usage.completion_tokens)
      .num("total_tokens", usage.prompt_tokens + usage.completion_tokens)
      .done();
}

ObjectWriter header(const CompletionCall& call, const ResponseId& rid, bool chunk) {
  ObjectWriter w;
  w.str("id", rid.id);
  w.str("object", call.chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion");
  w.num("created", rid.created);
  w.str("model", rid.model);
  return w;
}

}  // namespace

std::variant<CompletionCall, ApiError> parse_completion_call(std::string_view body, bool chat) {
  Value root;
  try {
    root = json::parse_json(body);
  } catch (const Error& e) {
    return bad(str_cat("malformed JSON body: ", e.what()), "");
  }
  if (!root.is_object()) return bad(str_cat("the body must be a JSON object, got ", json::kind_name(root.kind)), "");
  CompletionCall call;
  call.chat = chat;
  const Value* messages = nullptr;
  bool has_stream_options = false, has_model = false, has_prompt = false;
  for (const auto& [key, value] : root.object_items) {
    if (value.kind == Value::Kind::kNull) continue;
    has_model |= key == "model";
    has_prompt |= key == "prompt";
    if (auto e = read_field(key, value, chat, &call, &messages, &has_stream_options)) return *e;
  }
  if (!has_model) return bad("missing required field 'model'", "model");
  if (has_stream_options && !call.stream) return bad("'stream_options' is only allowed with stream: true", "stream_options");
  if (chat) {
    if (messages == nullptr) return bad("missing required field 'messages'", "messages");
    if (auto e = render_chat(*messages, &call)) return *e;
  } else if (!has_prompt) {
    return bad("missing required field 'prompt'", "prompt");
  }
  return call;
}

const char* finish_reason_name(FinishReason finish) { return finish == FinishReason::kStop ? "stop" : "length"; }

std::string render_completion(const CompletionCall& call, const ResponseId& rid, const std::string& text,
                              FinishReason finish, const CompletionUsage& usage) {
  ObjectWriter choice;
  choice.num("index", 0);
  if (call.chat) {
    choice.raw("message", ObjectWriter().str("role", "assistant").str("content", text).done());
  } else {
    choice.str("text", text).raw("logprobs", "null");
  }
  choice.str("finish_reason", finish_reason_name(finish));
  return header(call, rid, false).raw("choices", "[" + choice.done() + "]").raw("usage", usage_json(usage)).done();
}

std::string render_stream_chunk(const CompletionCall& call, const ResponseId& rid, const std::string& delta,
                                std::optional<FinishReason> finish, bool first) {
  ObjectWriter choice;
  choice.num("index", 0);
  if (call.chat) {
    ObjectWriter d;
    if (first) d.str("role", "assistant");
    if (!delta.empty() || !finish) d.str("content", delta);
    choice.raw("delta", d.done());
  } else {
    choice.str("text", delta).raw("logprobs", "null");
  }
  choice.raw("finish_reason", finish ? json::quote_json(finish_reason_name(*finish)) : "null");
  return "data: " + header(call, rid, true).raw("choices", "[" + choice.done() + "]").done() + "\n\n";
}

std::string render_stream_usage(const CompletionCall& call, const ResponseId& rid, const CompletionUsage& usage) {
  return "data: " + header(call, rid, true).raw("choices", "[]").raw("usage", usage_json(usage)).done() + "\n\n";
}

std::string render_completion_call(const CompletionCall& call) {
  ObjectWriter w;
  w.str("model", call.model).str("prompt", call.prompt);
  if (!call.context.empty()) w.str("context", call.context);
  w.num("max_tokens", call.max_tokens);
  std::ostringstream t, p;
  t.precision(17);
  p.precision(17);
  t << call.temperature;
  p << call.top_p;
  w.raw("temperature", t.str()).raw("top_p", p.str());
  if (call.seed) w.num("seed", *call.seed);
  if (!call.stop.empty()) {
    std::string list = "[";
    for (const std::string& s : call.stop) list += (list.size() > 1 ? "," : "") + json::quote_json(s);
    w.raw("stop", list + "]");
  }
  w.raw("stream", call.stream ? "true" : "false");
  return w.done();
}

std::string render_models(const std::string& model, int64_t created) {
  const std::string entry =
      ObjectWriter().str("id", model).str("object", "model").num("created", created).str("owned_by", "gsa").done();
  return ObjectWriter().str("object", "list").raw("data", "[" + entry + "]").done();
}

std::string render_error(const ApiError& error) {
  const std::string inner = ObjectWriter()
                                .str("message", error.message)
                                .str("type", error.type)
                                .raw("param", null_or_quoted(error.param))
                                .raw("code", null_or_quoted(error.code))
                                .done();
  return ObjectWriter().raw("error", inner).done();
}

}  // namespace gsa::serve
