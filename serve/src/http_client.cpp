#include "gsa/serve/http_client.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "gsa/runtime/error.h"
#include "gsa/runtime/json_reader.h"
#include "gsa/serve/api_codec.h"

namespace gsa::serve {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct Url {
  std::string host, port = "80", prefix;
};

Url parse_url(const std::string& url) {
  const std::string scheme = "http://";
  GSA_CHECK(url.compare(0, scheme.size(), scheme) == 0, "--server ", url, ": only http://HOST[:PORT] URLs are supported");
  std::string rest = url.substr(scheme.size());
  Url u;
  const size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    u.prefix = rest.substr(slash);
    rest = rest.substr(0, slash);
  }
  while (!u.prefix.empty() && u.prefix.back() == '/') u.prefix.pop_back();
  const size_t colon = rest.rfind(':');
  u.host = rest.substr(0, colon);
  if (colon != std::string::npos) u.port = rest.substr(colon + 1);
  GSA_CHECK(!u.host.empty() && !u.port.empty(), "--server ", url, ": no host or port");
  return u;
}

// "status N: <the server's error message>" from an OpenAI error body (or the raw body).
std::string error_text(const std::string& body) {
  try {
    const json::Value v = json::parse_json(body);
    const json::Value* e = v.find("error");
    const json::Value* m = e != nullptr ? e->find("message") : nullptr;
    if (m != nullptr && m->is_string()) return m->string_value;
  } catch (const Error&) {
  }
  return body;
}

}  // namespace

std::string stream_completion(const std::string& url, CompletionCall call, const std::string& api_key,
                              const std::function<void(const std::string&)>& on_text) {
  const Url u = parse_url(url);
  call.stream = true;
  net::io_context io;
  beast::tcp_stream stream(io);
  beast::error_code ec;
  net::ip::tcp::resolver resolver(io);
  auto endpoints = resolver.resolve(u.host, u.port, ec);
  GSA_CHECK(!ec, "cannot resolve ", url, ": ", ec.message());
  stream.expires_after(std::chrono::seconds(30));
  stream.connect(endpoints, ec);
  GSA_CHECK(!ec, "cannot connect to ", url, ": ", ec.message());
  stream.expires_never();

  http::request<http::string_body> req{http::verb::post, u.prefix + "/v1/completions", 11};
  req.set(http::field::host, u.host);
  req.set(http::field::content_type, "application/json");
  req.set(http::field::accept, "text/event-stream");
  if (!api_key.empty()) req.set(http::field::authorization, "Bearer " + api_key);
  req.body() = render_completion_call(call);
  req.prepare_payload();
  http::write(stream, req, ec);
  GSA_CHECK(!ec, "sending the request to ", url, ": ", ec.message());

  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  http::read_header(stream, buffer, parser, ec);
  GSA_CHECK(!ec, "reading the answer of ", url, ": ", ec.message());
  const unsigned status = parser.get().result_int();
  std::string pending, finish;
  char chunk[4096];
  bool done = false;
  while (!parser.is_done() && !done) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof chunk;
    http::read(stream, buffer, parser, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec == http::error::end_of_stream) break;
    GSA_CHECK(!ec, "reading the answer of ", url, ": ", ec.message());
    pending.append(chunk, sizeof chunk - parser.get().body().size);
    if (status != 200) continue;
    // Server-sent events: "data: <json>\n\n" ... "data: [DONE]\n\n".
    for (size_t end; !done && (end = pending.find("\n\n")) != std::string::npos; pending.erase(0, end + 2)) {
      const std::string event = pending.substr(0, end);
      if (event.compare(0, 6, "data: ") != 0) continue;
      const std::string data = event.substr(6);
      if (data == "[DONE]") {
        done = true;
        break;
      }
      const json::Value v = json::parse_json(data);
      if (v.find("error") != nullptr) throw Error(str_cat(url, " failed the request: ", error_text(data)));
      const json::Value* choices = v.find("choices");
      if (choices == nullptr || !choices->is_array() || choices->array_items.empty()) continue;
      const json::Value& choice = choices->array_items[0];
      const json::Value* text = choice.find("text");
      if (text != nullptr && text->is_string() && !text->string_value.empty()) on_text(text->string_value);
      const json::Value* reason = choice.find("finish_reason");
      if (reason != nullptr && reason->is_string()) finish = reason->string_value;
    }
  }
  GSA_CHECK(status == 200, url, " answered ", status, ": ", error_text(pending));
  GSA_CHECK(done, url, " closed the stream before data: [DONE]");
  return finish;
}

}  // namespace gsa::serve
