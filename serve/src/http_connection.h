// One client connection of HttpServer (private to gsa_serve): reads requests with limits and deadlines, hands
// them to the RequestHandler, writes responses and event streams, notices a client that goes away. Every member
// runs on the server's I/O thread; ResponseSink calls from the engine thread are posted there.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "gsa/serve/http_server.h"
#include "gsa/serve/request_handler.h"

namespace gsa::serve {

// What a connection needs from its server.
struct ConnectionHost {
  RequestHandler* handler = nullptr;
  const ServerOptions* options = nullptr;
  std::function<bool()> draining;                          // answers then close their connection
  std::function<void(const void* connection)> on_closed;   // forget the connection
};

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  HttpConnection(boost::asio::ip::tcp::socket socket, ConnectionHost host);

  void start();
  void close();
  bool busy() const { return busy_; }  // a request is being answered
  // Answers with `response` at once and closes (e.g. too many connections).
  void reject(const HttpResponse& response);

  // The ResponseSink calls, on the I/O thread.
  void respond(HttpResponse response);
  void stream_begin();
  void stream_data(std::string events);
  void stream_end();

 private:
  void do_read();
  void on_header(boost::beast::error_code ec);
  void on_body(boost::beast::error_code ec);
  void on_read_error(boost::beast::error_code ec);
  void watch_disconnect();
  void linger_close();
  void discard();
  void send(std::string bytes, bool complete);
  void do_write();
  void on_write(boost::beast::error_code ec);
  void arm_timer(std::chrono::milliseconds after, std::function<void()> on_expiry);
  std::string head(int status, const std::string& content_type, int64_t content_length) const;

  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer timer_;
  ConnectionHost host_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  std::deque<std::string> out_;
  bool writing_ = false;
  bool complete_ = false;        // the whole current answer is queued
  bool close_after_ = false;     // close once the queue is written
  bool keep_alive_ = true;
  bool busy_ = false;
  bool timed_out_ = false;
  bool closed_ = false;
  std::shared_ptr<std::atomic<bool>> cancelled_;
};

}  // namespace gsa::serve
