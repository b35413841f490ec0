#include "gsa/serve/request_handler.h"

#include <ctime>
#include <random>

#include "gsa/runtime/error.h"
#include "gsa/runtime/tokenizer.h"
#include "gsa/serve/api_codec.h"

namespace gsa::serve {
namespace {

ApiError api_error(int status, std::string type, std::string message, std::string code = "") {
  ApiError e;
  e.status = status;
  e.type = std::move(type);
  e.message = std::move(message);
  e.code = std::move(code);
  return e;
}

// The answer of one accepted completion, fed by engine events (on the engine thread).
class CompletionReply {
 public:
  CompletionReply(CompletionCall call, ResponseId rid, std::shared_ptr<ResponseSink> sink)
      : call_(std::move(call)), rid_(std::move(rid)), sink_(std::move(sink)) {}

  void on_event(const EngineEvent& event) {
    switch (event.kind) {
      case EngineEvent::Kind::kText:
        if (call_.stream) {
          begin();
          sink_->stream_data(render_stream_chunk(call_, rid_, event.text, std::nullopt, first_));
          first_ = false;
        } else {
          text_ += event.text;
        }
        break;
      case EngineEvent::Kind::kDone:
        if (call_.stream) {
          begin();
          std::string tail = render_stream_chunk(call_, rid_, "", event.finish, first_);
          if (call_.stream_include_usage) tail += render_stream_usage(call_, rid_, event.usage);
          tail += kStreamDone;
          sink_->stream_data(std::move(tail));
          sink_->stream_end();
        } else {
          sink_->respond({200, "application/json", render_completion(call_, rid_, text_, event.finish, event.usage)});
        }
        break;
      case EngineEvent::Kind::kError: {
        const ApiError error = api_error(500, "server_error", event.text);
        if (call_.stream && begun_) {
          sink_->stream_data("data: " + render_error(error) + "\n\n");
          sink_->stream_end();
        } else {
          sink_->respond(RequestHandler::error_response(error));
        }
        break;
      }
    }
  }

 private:
  // The event-stream headers go out with the first event, from the engine thread like every later call, so the
  // sink sees them in order.
  void begin() {
    if (!begun_) sink_->stream_begin();
    begun_ = true;
  }

  CompletionCall call_;
  ResponseId rid_;
  std::shared_ptr<ResponseSink> sink_;
  std::string text_;
  bool first_ = true;
  bool begun_ = false;
};

}  // namespace

RequestHandler::RequestHandler(ServingEngine& engine, ServeMetrics& metrics, HandlerOptions options)
    : engine_(engine), metrics_(metrics), options_(std::move(options)), created_(std::time(nullptr)) {}

HttpResponse RequestHandler::error_response(const ApiError& error) {
  return {error.status, "application/json", render_error(error)};
}

std::optional<HttpResponse> RequestHandler::handle(const HttpRequest& request, std::shared_ptr<ResponseSink> sink,
                                                   std::shared_ptr<std::atomic<bool>> cancelled) {
  const std::string path = request.target.substr(0, request.target.find('?'));
  const bool get = request.method == "GET", post = request.method == "POST";
  auto wrong_method = [&](const char* allowed) {
    return error_response(api_error(405, "invalid_request_error",
                                    str_cat(request.method, " ", path, " is not allowed; use ", allowed)));
  };
  if (path == "/health") return get ? HttpResponse{200, "application/json", "{\"status\":\"ok\"}"} : wrong_method("GET");
  if (path == "/metrics") {
    return get ? HttpResponse{200, "text/plain; version=0.0.4", metrics_.prometheus()} : wrong_method("GET");
  }
  const bool models = path == "/v1/models", completions = path == "/v1/completions",
             chat = path == "/v1/chat/completions";
  if (!models && !completions && !chat) {
    return error_response(api_error(404, "invalid_request_error", str_cat("no route ", path)));
  }
  if (!options_.api_key.empty() && request.authorization != "Bearer " + options_.api_key) {
    return error_response(api_error(401, "authentication_error",
                                    request.authorization.empty() ? "missing 'Authorization: Bearer <key>' header"
                                                                  : "invalid API key",
                                    "invalid_api_key"));
  }
  if (models) return get ? HttpResponse{200, "application/json", render_models(options_.model_name, created_)}
                         : wrong_method("GET");
  if (!post) return wrong_method("POST");
  std::optional<HttpResponse> response = complete(request, chat, std::move(sink), std::move(cancelled));
  if (response) metrics_.count_request(response->status == 503 ? "rejected" : "invalid");
  return response;
}

std::optional<HttpResponse> RequestHandler::complete(const HttpRequest& request, bool chat,
                                                     std::shared_ptr<ResponseSink> sink,
                                                     std::shared_ptr<std::atomic<bool>> cancelled) {
  std::variant<CompletionCall, ApiError> parsed = parse_completion_call(request.body, chat);
  if (auto* error = std::get_if<ApiError>(&parsed)) return error_response(*error);
  CompletionCall call = std::get<CompletionCall>(std::move(parsed));
  if (call.model != options_.model_name) {
    ApiError e = api_error(404, "invalid_request_error",
                           str_cat("the model '", call.model, "' does not exist; this server serves '",
                                   options_.model_name, "'"),
                           "model_not_found");
    e.param = "model";
    return error_response(e);
  }
  const Tokenizer& tokenizer = engine_.tokenizer();
  EngineRequest er;
  er.context = tokenizer.encode(call.context);
  er.suffix = tokenizer.encode(call.prompt);
  const int64_t tokens = static_cast<int64_t>(er.context.size() + er.suffix.size());
  if (tokens == 0 || tokens > options_.max_prompt_tokens) {
    ApiError e = api_error(400, "invalid_request_error",
                           tokens == 0 ? std::string("the prompt is empty (no context and no prompt text)")
                                       : str_cat("the prompt has ", tokens, " tokens, the limit is ",
                                                 options_.max_prompt_tokens));
    e.param = chat ? "messages" : "prompt";
    return error_response(e);
  }
  er.sampling.max_new_tokens = call.max_tokens;
  er.sampling.temperature = call.temperature;
  er.sampling.top_p = call.top_p;
  er.sampling.seed = call.seed ? static_cast<uint64_t>(*call.seed) : std::random_device{}();
  er.stop = call.stop;
  const std::string problem = invalid_sampling(er.sampling);
  if (!problem.empty()) return error_response(api_error(400, "invalid_request_error", problem));

  ResponseId rid{str_cat(chat ? "chatcmpl-" : "cmpl-", next_id_++), static_cast<int64_t>(std::time(nullptr)),
                 options_.model_name};
  auto reply = std::make_shared<CompletionReply>(std::move(call), std::move(rid), sink);
  if (std::optional<ApiError> refused =
          engine_.submit(std::move(er), [reply](const EngineEvent& e) { reply->on_event(e); }, std::move(cancelled))) {
    return error_response(*refused);
  }
  return std::nullopt;
}

}  // namespace gsa::serve
