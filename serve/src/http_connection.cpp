#include "http_connection.h"

#include <array>

#include "gsa/runtime/error.h"

namespace gsa::serve {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

// Posts the engine thread's calls to the connection's I/O thread, in call order; a closed connection drops them.
class ConnectionSink : public ResponseSink {
 public:
  ConnectionSink(std::weak_ptr<HttpConnection> connection, net::any_io_executor executor)
      : connection_(std::move(connection)), executor_(std::move(executor)) {}
  void respond(HttpResponse response) override {
    post([response = std::move(response)](HttpConnection& c) mutable { c.respond(std::move(response)); });
  }
  void stream_begin() override {
    post([](HttpConnection& c) { c.stream_begin(); });
  }
  void stream_data(std::string events) override {
    post([events = std::move(events)](HttpConnection& c) mutable { c.stream_data(std::move(events)); });
  }
  void stream_end() override {
    post([](HttpConnection& c) { c.stream_end(); });
  }

 private:
  template <typename F>
  void post(F&& f) {
    net::post(executor_, [weak = connection_, f = std::forward<F>(f)]() mutable {
      if (auto c = weak.lock()) f(*c);
    });
  }
  std::weak_ptr<HttpConnection> connection_;
  net::any_io_executor executor_;
};

ApiError transport_error(int status, std::string message) {
  ApiError e;
  e.status = status;
  e.message = std::move(message);
  return e;
}

}  // namespace

HttpConnection::HttpConnection(net::ip::tcp::socket socket, ConnectionHost host)
    : socket_(std::move(socket)), timer_(socket_.get_executor()), host_(std::move(host)) {}

void HttpConnection::start() { do_read(); }

void HttpConnection::close() {
  if (closed_) return;
  closed_ = true;
  if (busy_ && cancelled_) cancelled_->store(true);  // the answer can no longer be delivered
  timer_.cancel();
  beast::error_code ignored;
  socket_.shutdown(net::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  host_.on_closed(this);
}

void HttpConnection::arm_timer(std::chrono::milliseconds after, std::function<void()> on_expiry) {
  timer_.expires_after(after);
  timer_.async_wait([self = shared_from_this(), on_expiry = std::move(on_expiry)](beast::error_code ec) {
    if (!ec && !self->closed_) on_expiry();
  });
}

void HttpConnection::do_read() {
  if (closed_) return;
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(host_.options->max_header_bytes));
  parser_->body_limit(static_cast<std::uint64_t>(host_.options->max_body_bytes));
  timed_out_ = false;
  // The deadline covers the whole request, headers and body: a slow or stalled client gets 408.
  arm_timer(host_.options->read_timeout, [this] {
    timed_out_ = true;
    beast::error_code ignored;
    socket_.cancel(ignored);
  });
  http::async_read_header(socket_, buffer_, *parser_,
                          [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
}

void HttpConnection::on_header(beast::error_code ec) {
  if (ec) return on_read_error(ec);
  const auto& req = parser_->get();
  if (beast::iequals(req[http::field::expect], "100-continue")) {
    beast::error_code ignored;
    net::write(socket_, net::buffer(std::string_view("HTTP/1.1 100 Continue\r\n\r\n")), ignored);
  }
  http::async_read(socket_, buffer_, *parser_,
                   [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_body(ec); });
}

void HttpConnection::on_body(beast::error_code ec) {
  timer_.cancel();
  if (ec) return on_read_error(ec);
  const auto& req = parser_->get();
  keep_alive_ = req.keep_alive();
  HttpRequest request;
  request.method = std::string(req.method_string());
  request.target = std::string(req.target());
  request.authorization = std::string(req[http::field::authorization]);
  request.body = req.body();
  busy_ = true;
  complete_ = false;
  cancelled_ = std::make_shared<std::atomic<bool>>(false);
  auto sink = std::make_shared<ConnectionSink>(weak_from_this(), socket_.get_executor());
  std::optional<HttpResponse> response;
  try {
    response = host_.handler->handle(request, sink, cancelled_);
  } catch (const std::exception& e) {
    response = RequestHandler::error_response(transport_error(500, str_cat("internal error: ", e.what())));
  }
  if (response) {
    respond(std::move(*response));
  } else {
    watch_disconnect();
  }
}

void HttpConnection::on_read_error(beast::error_code ec) {
  if (timed_out_) {
    // Nothing received on an idle keep-alive connection: just close it.
    if (parser_->is_header_done() || buffer_.size() > 0) {
      keep_alive_ = false;
      return respond(RequestHandler::error_response(transport_error(
          408, str_cat("request not received within ", host_.options->read_timeout.count(), " ms"))));
    }
    return close();
  }
  if (ec == http::error::end_of_stream || ec == net::error::operation_aborted || ec == net::error::connection_reset ||
      ec == net::error::eof) {
    return close();
  }
  keep_alive_ = false;
  if (ec == http::error::header_limit) {
    return respond(RequestHandler::error_response(
        transport_error(431, str_cat("request headers exceed ", host_.options->max_header_bytes, " bytes"))));
  }
  if (ec == http::error::body_limit) {
    return respond(RequestHandler::error_response(
        transport_error(413, str_cat("request body exceeds ", host_.options->max_body_bytes, " bytes"))));
  }
  respond(RequestHandler::error_response(transport_error(400, str_cat("malformed HTTP request: ", ec.message()))));
}

void HttpConnection::linger_close() {
  // Closing with unread request bytes would send a reset that can destroy the answer before the client reads it
  // (e.g. a 413 while the body is still coming): stop sending, discard what arrives until the client closes or
  // kLinger passes, then close.
  constexpr std::chrono::milliseconds kLinger{1000};
  beast::error_code ignored;
  socket_.shutdown(net::ip::tcp::socket::shutdown_send, ignored);
  arm_timer(kLinger, [this] { close(); });
  discard();
}

void HttpConnection::discard() {
  auto sink = std::make_shared<std::array<char, 4096>>();
  socket_.async_read_some(net::buffer(*sink), [self = shared_from_this(), sink](beast::error_code ec, std::size_t) {
    if (self->closed_) return;
    if (ec) return self->close();
    self->discard();
  });
}

void HttpConnection::watch_disconnect() {
  // The client sends nothing while it waits for its answer: readable now means it closed the connection.
  socket_.async_wait(net::ip::tcp::socket::wait_read, [self = shared_from_this()](beast::error_code ec) {
    if (ec || self->closed_ || !self->busy_) return;
    beast::error_code ignored;
    if (self->socket_.available(ignored) == 0) self->close();
  });
}

std::string HttpConnection::head(int status, const std::string& content_type, int64_t content_length) const {
  std::string h = str_cat("HTTP/1.1 ", status, " ",
                          std::string(http::obsolete_reason(http::int_to_status(static_cast<unsigned>(status)))),
                          "\r\nServer: gsa\r\nContent-Type: ", content_type, "\r\n");
  if (content_length >= 0) h += str_cat("Content-Length: ", content_length, "\r\n");
  if (content_length < 0) h += "Cache-Control: no-cache\r\n";
  h += close_after_ ? "Connection: close\r\n\r\n" : "Connection: keep-alive\r\n\r\n";
  return h;
}

void HttpConnection::respond(HttpResponse response) {
  if (closed_) return;
  close_after_ = !keep_alive_ || host_.draining();
  send(head(response.status, response.content_type, static_cast<int64_t>(response.body.size())) + response.body,
       true);
}

void HttpConnection::stream_begin() {
  if (closed_) return;
  close_after_ = true;  // the stream's end is the connection's end
  send(head(200, "text/event-stream", -1), false);
}

void HttpConnection::stream_data(std::string events) {
  if (closed_) return;
  send(std::move(events), false);
}

void HttpConnection::stream_end() {
  if (closed_) return;
  send("", true);
}

void HttpConnection::reject(const HttpResponse& response) {
  keep_alive_ = false;
  busy_ = true;
  respond(response);
}

void HttpConnection::send(std::string bytes, bool complete) {
  if (!bytes.empty()) out_.push_back(std::move(bytes));
  complete_ = complete_ || complete;
  if (out_.empty() && complete_) return on_write({});
  do_write();
}

void HttpConnection::do_write() {
  if (writing_ || out_.empty() || closed_) return;
  writing_ = true;
  arm_timer(host_.options->write_timeout, [this] { close(); });  // the client stopped reading
  net::async_write(socket_, net::buffer(out_.front()),
                   [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_write(ec); });
}

void HttpConnection::on_write(beast::error_code ec) {
  if (writing_) {
    writing_ = false;
    timer_.cancel();
    if (ec) return close();
    out_.pop_front();
  }
  if (closed_) return;
  if (!out_.empty()) return do_write();
  if (!complete_) return;
  // The answer is out: close, or wait for the next request on this connection.
  if (close_after_) return linger_close();
  busy_ = false;
  complete_ = false;
  do_read();
}

}  // namespace gsa::serve
