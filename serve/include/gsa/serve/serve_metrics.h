// The server's Prometheus metrics (GET /metrics), updated by the engine and the HTTP layer from any thread.
//
// Contract: prometheus() renders text exposition format 0.0.4: gauges gsa_queue_depth, gsa_running_requests,
// gsa_tokens_per_second (generated tokens over the last 10 s), gsa_kv_cache_allocated_bytes,
// gsa_kv_cache_reserved_bytes, gsa_kv_cache_budget_bytes; counters gsa_generated_tokens_total,
// gsa_requests_total{outcome=...} (finished, cancelled, failed, rejected, invalid); histograms
// gsa_time_to_first_token_seconds and gsa_time_per_output_token_seconds (cumulative buckets, _sum, _count).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace gsa::serve {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // name_bucket{le="..."} lines, name_sum, name_count.
  void render(const std::string& name, std::string* out) const;

 private:
  std::vector<double> bounds_;
  std::vector<int64_t> counts_;  // [bounds + 1], the last one +Inf, not cumulative
  double sum_ = 0;
  int64_t count_ = 0;
};

class ServeMetrics {
 public:
  using Clock = std::chrono::steady_clock;
  ServeMetrics();

  void set_load(int64_t queue_depth, int64_t running);
  void set_kv(int64_t allocated_bytes, int64_t reserved_bytes, int64_t budget_bytes);
  void add_tokens(int64_t count, Clock::time_point now);
  void observe_first_token(double seconds);
  void observe_token_latency(double seconds);
  void count_request(const std::string& outcome);
  std::string prometheus() const;

 private:
  mutable std::mutex mu_;
  int64_t queue_depth_ = 0, running_ = 0;
  int64_t kv_allocated_ = 0, kv_reserved_ = 0, kv_budget_ = 0;
  int64_t tokens_total_ = 0;
  std::deque<std::pair<Clock::time_point, int64_t>> recent_;  // (time, tokens) over the last 10 s
  Histogram first_token_, token_latency_;
  std::map<std::string, int64_t> requests_;
};

}  // namespace gsa::serve
