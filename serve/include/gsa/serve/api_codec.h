// JSON <-> the API structs of api_types.h (OpenAI's wire format), with the gsa JSON reader; no sockets.
//
// Contract:
// - parse_completion_call(body, chat) accepts exactly OpenAI's shape for the fields the server implements:
//   model (string, required), prompt (string; completions) or messages (non-empty array of {role: system | user
//   | assistant, content: string}; chat), max_tokens (integer >= 1; chat also max_completion_tokens), temperature
//   (number in [0, 2]), top_p (number in (0, 1]), seed (integer), stop (string or array of 1-4 non-empty
//   strings), stream (bool), stream_options ({include_usage: bool}, only with stream), n (must be 1), user
//   (string, recorded nowhere), and the gsa extension context (string). null means "absent". Anything else fails:
//   malformed JSON, a body that is not an object, a wrong type, an unknown field, a known OpenAI field the server
//   does not implement (logprobs, echo, ...). Each failure is an ApiError 400 naming the field in `param`.
// - A chat renders as: context = the request's context, then "<role>: <content>\n" for every message but the
//   last; prompt = "<role>: <content>\nassistant: " for the last message.
// - The render_* functions write OpenAI's response, stream chunk, model list and error objects; every string is
//   escaped (api text must already be valid UTF-8; text_stream.h makes it so).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "gsa/serve/api_types.h"

namespace gsa::serve {

std::variant<CompletionCall, ApiError> parse_completion_call(std::string_view body, bool chat);

// Identity of one response: "cmpl-7" / "chatcmpl-7", the Unix time it was created and the model name.
struct ResponseId {
  std::string id;
  int64_t created = 0;
  std::string model;
};

std::string render_completion(const CompletionCall& call, const ResponseId& rid, const std::string& text,
                              FinishReason finish, const CompletionUsage& usage);
// One server-sent event "data: {...}\n\n" with a text delta (finish: the last chunk, whose delta may be empty).
std::string render_stream_chunk(const CompletionCall& call, const ResponseId& rid, const std::string& delta,
                                std::optional<FinishReason> finish, bool first);
// The usage chunk of stream_options.include_usage (empty choices), as an SSE event.
std::string render_stream_usage(const CompletionCall& call, const ResponseId& rid, const CompletionUsage& usage);
inline constexpr std::string_view kStreamDone = "data: [DONE]\n\n";

// The request body of `call` for POST /v1/completions (the client side: gsa generate --server).
std::string render_completion_call(const CompletionCall& call);

std::string render_models(const std::string& model, int64_t created);
std::string render_error(const ApiError& error);
const char* finish_reason_name(FinishReason finish);

}  // namespace gsa::serve
