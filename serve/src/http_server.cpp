#include "gsa/serve/http_server.h"

#include <csignal>
#include <future>
#include <map>
#include <thread>

#include "gsa/runtime/error.h"
#include "http_connection.h"

namespace gsa::serve {

namespace net = boost::asio;
using tcp = net::ip::tcp;

class HttpServer::Impl {
 public:
  Impl(RequestHandler& handler, ServerOptions options)
      : handler_(handler), options_(std::move(options)), acceptor_(io_), signals_(io_, SIGTERM, SIGINT) {
    GSA_CHECK(options_.port >= 0 && options_.port <= 65535, "--port must be in 0..65535, got ", options_.port);
    boost::system::error_code ec;
    tcp::resolver resolver(io_);
    auto endpoints = resolver.resolve(options_.host, std::to_string(options_.port), ec);
    GSA_CHECK(!ec && !endpoints.empty(), "cannot resolve --host ", options_.host, ": ", ec.message());
    const tcp::endpoint endpoint = endpoints.begin()->endpoint();
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    GSA_CHECK(!ec, "cannot listen on ", options_.host, ":", options_.port, ": ", ec.message());
    port_ = acceptor_.local_endpoint().port();
  }

  int port() const { return port_; }

  void start(std::function<void()> on_signal) {
    on_signal_ = std::move(on_signal);
    wait_signal();
    do_accept();
    thread_ = std::thread([this] { io_.run(); });
  }

  void stop(std::chrono::milliseconds grace) {
    if (!thread_.joinable()) return;
    std::promise<void> closed;
    std::future<void> done = closed.get_future();
    net::post(io_, [this, &closed] {
      stopping_ = true;
      stop_accepting();
      // Idle connections close now; busy ones close when their answer is written (draining).
      std::vector<std::shared_ptr<HttpConnection>> idle;
      for (auto& [key, c] : connections_) {
        if (!c->busy()) idle.push_back(c);
      }
      for (auto& c : idle) c->close();
      check_empty_ = [&closed, this] {
        if (connections_.empty() && check_empty_) {
          check_empty_ = nullptr;
          closed.set_value();
        }
      };
      check_empty_();
    });
    done.wait_for(grace);
    net::post(io_, [this] { check_empty_ = nullptr; });
    io_.stop();
    thread_.join();
    check_empty_ = nullptr;  // the I/O thread is gone: no more callbacks
  }

 private:
  void wait_signal() {
    signals_.async_wait([this](boost::system::error_code ec, int) {
      if (ec) return;
      if (!signalled_) {
        signalled_ = true;
        stop_accepting();
        if (on_signal_) on_signal_();
      }
      wait_signal();  // later signals: already draining
    });
  }

  void stop_accepting() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  }

  void do_accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
        return do_accept();  // e.g. too many open files: keep serving the others
      }
      ConnectionHost host;
      host.handler = &handler_;
      host.options = &options_;
      host.draining = [this] { return signalled_ || stopping_; };
      host.on_closed = [this](const void* key) {
        connections_.erase(key);
        if (check_empty_) check_empty_();
      };
      auto connection = std::make_shared<HttpConnection>(std::move(socket), std::move(host));
      connections_[connection.get()] = connection;
      if (static_cast<int64_t>(connections_.size()) > options_.max_connections) {
        ApiError e;
        e.status = 503;
        e.type = "server_error";
        e.message = str_cat("too many connections (", options_.max_connections, "); retry later");
        connection->reject(RequestHandler::error_response(e));
      } else {
        connection->start();
      }
      do_accept();
    });
  }

  RequestHandler& handler_;
  ServerOptions options_;
  net::io_context io_;
  tcp::acceptor acceptor_;
  net::signal_set signals_;
  int port_ = 0;
  std::thread thread_;
  std::function<void()> on_signal_;
  bool signalled_ = false;  // I/O thread only
  bool stopping_ = false;   // I/O thread only
  std::map<const void*, std::shared_ptr<HttpConnection>> connections_;  // I/O thread only
  std::function<void()> check_empty_;                                   // I/O thread only
};

HttpServer::HttpServer(RequestHandler& handler, ServerOptions options)
    : impl_(std::make_unique<Impl>(handler, std::move(options))) {}

HttpServer::~HttpServer() { stop(std::chrono::milliseconds(0)); }

int HttpServer::port() const { return impl_->port(); }

void HttpServer::start(std::function<void()> on_signal) { impl_->start(std::move(on_signal)); }

void HttpServer::stop(std::chrono::milliseconds grace) { impl_->stop(grace); }

}  // namespace gsa::serve
