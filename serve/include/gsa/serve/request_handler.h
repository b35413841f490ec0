// The HTTP API without the transport (STYLE.md 19): one parsed HTTP request in, a response or a stream of
// server-sent events out. Unit-testable without sockets; http_server.h is the Beast transport around it.
//
// Contract:
// - Routes: GET /health, GET /metrics (Prometheus text), GET /v1/models, POST /v1/completions,
//   POST /v1/chat/completions (api_codec.h). A query string is ignored. Other paths get 404, other methods on
//   these paths 405. With an API key, /v1/* require "Authorization: Bearer KEY" (401 otherwise); /health and
//   /metrics stay open.
// - A completion: the body is validated (400, OpenAI's error shape, naming the field), the model must be the
//   served one (404 model_not_found), the prompt must not be empty and at most max_prompt_tokens tokens (byte
//   tokenizer; 400), then it goes to the engine (503 with the engine's reason when refused). No seed: a random
//   one. handle() then returns nullopt and the answer comes through the sink, called from the engine thread:
//   respond() once (non-streaming), or stream_begin() with the first event, stream_data() per chunk ("data: {...}\n\n",
//   a final chunk with finish_reason, the usage chunk when stream_options.include_usage, "data: [DONE]\n\n"),
//   stream_end().
// - The transport sets *cancelled when the client goes away; the engine then drops the request.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "gsa/serve/api_types.h"
#include "gsa/serve/serve_metrics.h"
#include "gsa/serve/serving_engine.h"

namespace gsa::serve {

struct HttpRequest {
  std::string method;         // "GET", "POST", ...
  std::string target;         // "/v1/completions?x=y"
  std::string authorization;  // the Authorization header; "" when absent
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// Where a deferred answer goes; implementations must accept calls from any thread, in call order.
class ResponseSink {
 public:
  virtual ~ResponseSink() = default;
  virtual void respond(HttpResponse response) = 0;
  virtual void stream_begin() = 0;                 // 200, text/event-stream
  virtual void stream_data(std::string events) = 0;
  virtual void stream_end() = 0;
};

struct HandlerOptions {
  std::string model_name = "gsa";
  std::string api_key;                          // "" = no authentication
  int64_t max_prompt_tokens = int64_t{1} << 20; // context + prompt
};

class RequestHandler {
 public:
  RequestHandler(ServingEngine& engine, ServeMetrics& metrics, HandlerOptions options);

  std::optional<HttpResponse> handle(const HttpRequest& request, std::shared_ptr<ResponseSink> sink,
                                     std::shared_ptr<std::atomic<bool>> cancelled);

  static HttpResponse error_response(const ApiError& error);

 private:
  std::optional<HttpResponse> complete(const HttpRequest& request, bool chat, std::shared_ptr<ResponseSink> sink,
                                       std::shared_ptr<std::atomic<bool>> cancelled);

  ServingEngine& engine_;
  ServeMetrics& metrics_;
  HandlerOptions options_;
  int64_t created_;
  std::atomic<int64_t> next_id_{1};
};

}  // namespace gsa::serve
