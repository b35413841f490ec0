#include "gsa/serve/serve_metrics.h"

#include <charconv>

namespace gsa::serve {
namespace {

constexpr std::chrono::seconds kRateWindow{10};

std::string number(double v) {  // shortest text that reads back exactly: 0.005, not 0.0050000000000000001
  char buf[64];
  const auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
  return std::string(buf, end);
}

void gauge(const std::string& name, const std::string& help, double value, std::string* out) {
  *out += "# HELP " + name + " " + help + "\n# TYPE " + name + " gauge\n" + name + " " + number(value) + "\n";
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::render(const std::string& name, std::string* out) const {
  int64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    const std::string le = i < bounds_.size() ? number(bounds_[i]) : "+Inf";
    *out += name + "_bucket{le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
  }
  *out += name + "_sum " + number(sum_) + "\n" + name + "_count " + std::to_string(count_) + "\n";
}

ServeMetrics::ServeMetrics()
    : first_token_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      token_latency_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}) {}

void ServeMetrics::set_load(int64_t queue_depth, int64_t running) {
  std::lock_guard<std::mutex> lock(mu_);
  queue_depth_ = queue_depth;
  running_ = running;
}

void ServeMetrics::set_kv(int64_t allocated_bytes, int64_t reserved_bytes, int64_t budget_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  kv_allocated_ = allocated_bytes;
  kv_reserved_ = reserved_bytes;
  kv_budget_ = budget_bytes;
}

void ServeMetrics::add_tokens(int64_t count, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  tokens_total_ += count;
  recent_.emplace_back(now, count);
  while (!recent_.empty() && now - recent_.front().first > kRateWindow) recent_.pop_front();
}

void ServeMetrics::observe_first_token(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  first_token_.observe(seconds);
}

void ServeMetrics::observe_token_latency(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  token_latency_.observe(seconds);
}

void ServeMetrics::count_request(const std::string& outcome) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[outcome];
}

std::string ServeMetrics::prometheus() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  gauge("gsa_queue_depth", "Requests waiting for admission.", double(queue_depth_), &out);
  gauge("gsa_running_requests", "Requests being prefilled or decoded.", double(running_), &out);
  int64_t recent = 0;
  const auto now = Clock::now();
  for (const auto& [t, n] : recent_) recent += now - t <= kRateWindow ? n : 0;
  gauge("gsa_tokens_per_second", "Generated tokens per second over the last 10 s.",
        double(recent) / double(kRateWindow.count()), &out);
  gauge("gsa_kv_cache_allocated_bytes", "KV cache allocated on rank 0 (grows in blocks).", double(kv_allocated_), &out);
  gauge("gsa_kv_cache_reserved_bytes", "KV cache admitted requests may grow to.", double(kv_reserved_), &out);
  gauge("gsa_kv_cache_budget_bytes", "KV cache budget for admission control.", double(kv_budget_), &out);
  out += "# HELP gsa_generated_tokens_total Generated tokens.\n# TYPE gsa_generated_tokens_total counter\n";
  out += "gsa_generated_tokens_total " + std::to_string(tokens_total_) + "\n";
  out += "# HELP gsa_requests_total Completion requests by outcome.\n# TYPE gsa_requests_total counter\n";
  for (const auto& [outcome, n] : requests_) {
    out += "gsa_requests_total{outcome=\"" + outcome + "\"} " + std::to_string(n) + "\n";
  }
  out += "# HELP gsa_time_to_first_token_seconds From arrival to the first generated token.\n"
         "# TYPE gsa_time_to_first_token_seconds histogram\n";
  first_token_.render("gsa_time_to_first_token_seconds", &out);
  out += "# HELP gsa_time_per_output_token_seconds Between consecutive generated tokens of a request.\n"
         "# TYPE gsa_time_per_output_token_seconds histogram\n";
  token_latency_.render("gsa_time_per_output_token_seconds", &out);
  return out;
}

}  // namespace gsa::serve
