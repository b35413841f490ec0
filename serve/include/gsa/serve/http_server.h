// The HTTP/1.1 transport of the serving API (Boost.Beast over Asio, one I/O thread) around a RequestHandler.
//
// Contract:
// - The constructor binds host:port (port 0: any free port, port() says which) or throws gsa::Error naming them.
//   start() runs the I/O thread: accepts connections (keep-alive; at most max_connections, more get 503), reads
//   each request with limits and a deadline, and answers through the handler:
//     headers over max_header_bytes -> 431, a body over max_body_bytes -> 413, unparsable HTTP -> 400, a request
//     not complete within read_timeout (a slow or stalled client) -> 408, each as OpenAI's JSON error; the
//     connection is then closed and the server keeps serving. "Expect: 100-continue" is honoured.
//   A streamed answer is sent as text/event-stream with "Connection: close". A write that does not complete
//   within write_timeout (a client that stopped reading) closes the connection. When the client goes away
//   before its answer is complete, the request's cancelled flag is set (the engine drops it).
// - SIGTERM or SIGINT: stops accepting and calls on_signal once (the caller drains the engine); later answers
//   close their connections. stop(grace) closes idle connections, waits up to `grace` for busy ones to finish
//   writing, then stops the I/O thread. Call stop() from another thread than the I/O one; the destructor calls it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "gsa/serve/request_handler.h"

namespace gsa::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;
  int64_t max_header_bytes = 16 << 10;
  int64_t max_body_bytes = 8 << 20;
  std::chrono::milliseconds read_timeout{10000};
  std::chrono::milliseconds write_timeout{30000};
  int64_t max_connections = 512;
};

class HttpServer {
 public:
  HttpServer(RequestHandler& handler, ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const;
  void start(std::function<void()> on_signal);
  void stop(std::chrono::milliseconds grace);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gsa::serve
