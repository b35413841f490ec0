// The serving API's messages, defined once as plain structs (api_codec.h maps them to and from JSON; the HTTP
// transport and `gsa generate --server` both use them).
//
// Contract:
// - CompletionCall is one validated POST /v1/completions or /v1/chat/completions body: OpenAI's fields that the
//   server implements, plus the gsa extension `context` (text that is gisted; `prompt` is the raw suffix, as in
//   `gsa generate --context/--prompt`). A chat's messages are already rendered into context and prompt
//   (api_codec.h says how).
// - ApiError is OpenAI's error shape {"error": {"message", "type", "param", "code"}} with the HTTP status that
//   carries it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace gsa::serve {

struct ApiError {
  int status = 400;
  std::string type = "invalid_request_error";  // invalid_request_error | authentication_error | server_error ...
  std::string message;
  std::string param;  // the offending field, "" = null
  std::string code;   // e.g. "model_not_found", "" = null
};

struct CompletionCall {
  bool chat = false;
  std::string model;
  std::string context;           // gisted text (gsa extension)
  std::string prompt;            // raw suffix
  int64_t max_tokens = 16;       // OpenAI's default for completions, also used for chat
  double temperature = 1.0;      // OpenAI's default; 0 = greedy
  double top_p = 1.0;
  std::optional<int64_t> seed;   // absent: a fresh random seed per request
  std::vector<std::string> stop; // up to 4 non-empty stop sequences
  bool stream = false;
  bool stream_include_usage = false;  // stream_options.include_usage
};

enum class FinishReason { kStop, kLength };

struct CompletionUsage {
  int64_t prompt_tokens = 0;      // layout positions, gists included
  int64_t completion_tokens = 0;
};

}  // namespace gsa::serve
