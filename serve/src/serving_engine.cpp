#include "gsa/serve/serving_engine.h"

#include <random>

#include "gsa/runtime/error.h"
#include "gsa/runtime/tokenizer.h"
#include "gsa/serve/inference_engine.h"

namespace gsa::serve {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

int64_t blocks_of(int64_t positions) {
  return positions / kKvBlockPositions + (positions % kKvBlockPositions != 0);
}

ApiError unavailable(std::string message, std::string code) {
  ApiError e;
  e.status = 503;
  e.type = "server_error";
  e.message = std::move(message);
  e.code = std::move(code);
  return e;
}

}  // namespace

ServingEngine::ServingEngine(std::unique_ptr<SequenceBackend> backend, const GistOptions& gist, EngineOptions options,
                             ServeMetrics* metrics, Communicator* group,
                             std::shared_ptr<const ModelTokenizer> tokenizer)
    : backend_(std::move(backend)),
      tokenizer_(tokenizer != nullptr
                     ? std::move(tokenizer)
                     : std::make_shared<ModelTokenizer>(std::make_shared<ByteTokenizer>(), ModelOptions{}, gist.levels)),
      gist_(gist),
      options_(options),
      metrics_(metrics),
      group_(group) {
  GSA_CHECK(options_.max_queue >= 1 && options_.max_running >= 1 && options_.prefill_chunk >= 1,
            "engine limits must be >= 1: max_queue ", options_.max_queue, ", max_running ", options_.max_running,
            ", prefill_chunk ", options_.prefill_chunk);
  GSA_CHECK(options_.bytes_per_position > 0 && options_.kv_budget_bytes > 0, "KV budget ", options_.kv_budget_bytes,
            " bytes and bytes per position ", options_.bytes_per_position, " must be > 0");
  if (metrics_ != nullptr) metrics_->set_kv(0, 0, options_.kv_budget_bytes);
}

int64_t ServingEngine::prompt_positions(const std::vector<int64_t>& context, const std::vector<int64_t>& suffix) const {
  return request_layout(context, suffix, gist_, *tokenizer_).size();
}

std::optional<ApiError> ServingEngine::submit(EngineRequest request, EventCallback on_event,
                                              std::shared_ptr<std::atomic<bool>> cancelled) {
  GSA_CHECK(is_root(), "submit() on rank ", group_->rank(), ": only rank 0 of the group schedules");
  const std::string problem = invalid_sampling(request.sampling);
  GSA_CHECK(problem.empty(), problem);
  Pending p;
  p.prompt_positions = prompt_positions(request.context, request.suffix);
  GSA_CHECK(p.prompt_positions >= 1, "empty request: no context and no prompt");
  if (group_ != nullptr && p.prompt_positions < group_->size()) {  // each rank's shard needs a position
    ApiError e;  // 400 invalid_request_error
    e.message = str_cat("the prompt has ", p.prompt_positions, " positions (gists included), fewer than the ",
                        group_->size(), " ranks its KV cache is sharded over: send a longer prompt");
    e.param = "prompt";
    return e;
  }
  const int64_t positions = saturating_positions(p.prompt_positions, request.sampling.max_new_tokens);
  const int64_t budget_blocks = options_.kv_budget_bytes / (options_.bytes_per_position * kKvBlockPositions);
  if (blocks_of(positions) > budget_blocks) {
    return unavailable(str_cat("the request cannot fit the KV cache: ", p.prompt_positions, " prompt positions + ",
                               request.sampling.max_new_tokens, " max_tokens need ",
                               blocks_of(positions), " blocks of ", kKvBlockPositions, " positions, the budget holds ",
                               budget_blocks, " (", options_.kv_budget_bytes >> 20, " MiB); lower max_tokens"),
                       "kv_cache_too_small");
  }
  p.reserved_bytes = blocks_of(positions) * kKvBlockPositions * options_.bytes_per_position;
  p.request = std::move(request);
  p.on_event = std::move(on_event);
  p.cancelled = std::move(cancelled);
  p.arrived = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (draining_) return unavailable("the server is shutting down", "shutting_down");
    if (static_cast<int64_t>(queue_.size()) >= options_.max_queue) {
      return unavailable(str_cat("the request queue is full (", options_.max_queue, " waiting); retry later"),
                         "queue_full");
    }
    p.id = next_id_++;
    queue_.push_back(std::move(p));
  }
  wake_.notify_all();
  return std::nullopt;
}

void ServingEngine::drain() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    draining_ = true;
  }
  wake_.notify_all();
}

StepMessage ServingEngine::plan() {
  StepMessage m;
  for (auto it = running_.begin(); it != running_.end();) {
    Running& r = it->second;
    const bool cancelled = !r.finished && r.p.cancelled && r.p.cancelled->load();
    if (r.finished || cancelled) {
      if (cancelled && metrics_ != nullptr) metrics_->count_request("cancelled");
      m.remove.push_back(it->first);
      reserved_bytes_ -= r.p.reserved_bytes;
      it = running_.erase(it);
    } else {
      ++it;
    }
  }
  std::unique_lock<std::mutex> lock(mu_);
  auto admit = [&] {
    while (!queue_.empty()) {
      Pending& front = queue_.front();
      if (front.cancelled && front.cancelled->load()) {
        if (metrics_ != nullptr) metrics_->count_request("cancelled");
        queue_.pop_front();
        continue;
      }
      if (static_cast<int64_t>(running_.size()) >= options_.max_running ||
          reserved_bytes_ + front.reserved_bytes > options_.kv_budget_bytes) {
        break;
      }
      StepMessage::Add add{front.id, front.request.context, front.request.suffix,
                           saturating_positions(front.prompt_positions, front.request.sampling.max_new_tokens)};
      m.add.push_back(std::move(add));
      reserved_bytes_ += front.reserved_bytes;
      Running r;
      r.p = std::move(front);
      queue_.pop_front();
      SamplingOptions sampling = r.p.request.sampling;
      sampling.stop_tokens.clear();
      if (tokenizer_->eos_id()) sampling.stop_tokens.push_back(*tokenizer_->eos_id());
      tokenizer_->limit_sampling(&sampling);  // text ids only, no gist (runtime/model_tokenizer.h)
      r.sampler = std::make_unique<Sampler>(sampling, std::vector<int64_t>{});  // the gists are in never_tokens
      r.text = std::make_unique<TextStream>(r.p.request.stop);
      const int64_t id = r.p.id;
      running_.emplace(id, std::move(r));
    }
  };
  admit();
  const bool idle = running_.empty() && m.remove.empty() && m.add.empty();
  if (idle) {
    if (draining_ && queue_.empty()) {
      m.shutdown = true;
      return m;
    }
    // Nothing to run: wait for a request (or the next heartbeat tick of an sp group).
    wake_.wait_for(lock, options_.idle_tick, [&] { return !queue_.empty() || draining_; });
    admit();
  }
  lock.unlock();
  for (auto& [id, r] : running_) {
    if (r.prefilled < r.p.prompt_positions) {
      m.prefill.push_back({id, options_.prefill_chunk});
      break;  // one chunk per step
    }
  }
  for (auto& [id, r] : running_) {
    if (r.next_token) m.decode.emplace_back(id, *r.next_token);
  }
  return m;
}

void ServingEngine::apply(const StepMessage& m, std::map<int64_t, at::Tensor>* logits) {
  for (int64_t id : m.remove) backend_->remove(id);
  for (const StepMessage::Add& a : m.add) {
    backend_->add(a.id, request_layout(a.context, a.suffix, gist_, *tokenizer_), a.max_positions);
  }
  for (const StepMessage::Prefill& p : m.prefill) {
    at::Tensor l = backend_->prefill(p.id, p.count);
    if (l.defined()) (*logits)[p.id] = l;
  }
  if (!m.decode.empty()) {
    std::vector<at::Tensor> out = backend_->decode(m.decode);
    for (size_t i = 0; i < out.size(); ++i) (*logits)[m.decode[i].first] = out[i];
  }
}

void ServingEngine::finish(Running& r, EngineEvent event) {
  r.finished = true;
  r.next_token.reset();
  if (metrics_ != nullptr) metrics_->count_request(event.kind == EngineEvent::Kind::kDone ? "finished" : "failed");
  if (r.p.on_event) r.p.on_event(event);
}

void ServingEngine::consume(const StepMessage& m, const std::map<int64_t, at::Tensor>& logits) {
  for (const StepMessage::Prefill& p : m.prefill) {
    // Positions the chunk covered (the sharded backend runs the whole prompt at once and returns the logits).
    Running& r = running_.at(p.id);
    r.prefilled = logits.count(p.id) ? r.p.prompt_positions : r.prefilled + p.count;
  }
  const ModelTokenizer& tokenizer = *tokenizer_;
  // The greedy requests' tokens in one go (one copy to the host for all of them), the others one by one.
  std::vector<Sampler*> greedy;
  std::vector<at::Tensor> greedy_rows;
  std::vector<int64_t> greedy_request;
  for (auto& [id, r] : running_) {
    auto it = logits.find(id);
    if (r.finished || it == logits.end() || !r.sampler->greedy()) continue;
    greedy.push_back(r.sampler.get());
    greedy_rows.push_back(it->second);
    greedy_request.push_back(id);
  }
  const std::vector<int64_t> greedy_tokens = Sampler::sample_greedy(greedy, greedy_rows);
  std::map<int64_t, int64_t> chosen;  // request id -> its greedy token
  for (size_t i = 0; i < greedy_request.size(); ++i) chosen[greedy_request[i]] = greedy_tokens[i];
  const auto now = Clock::now();
  int64_t tokens = 0;
  for (auto& [id, r] : running_) {
    if (r.finished) continue;
    auto it = logits.find(id);
    if (it == logits.end()) continue;
    const auto greedy_token = chosen.find(id);
    const int64_t token = greedy_token != chosen.end() ? greedy_token->second : r.sampler->sample(it->second);
    ++r.generated;
    ++tokens;
    if (metrics_ != nullptr) {
      if (r.generated == 1) {
        metrics_->observe_first_token(seconds_between(r.p.arrived, now));
      } else {
        metrics_->observe_token_latency(seconds_between(r.last_token, now));
      }
    }
    r.last_token = now;
    const bool eos = token == tokenizer.eos_id();
    std::string delta = eos ? "" : r.text->append(tokenizer.decode({token}));
    const bool stop = eos || r.text->stopped();
    const bool length = !stop && r.generated >= r.p.request.sampling.max_new_tokens;
    if (stop || length) delta += r.text->finish();
    if (!delta.empty() && r.p.on_event) r.p.on_event({EngineEvent::Kind::kText, delta, {}, {}});
    if (stop || length) {
      EngineEvent done;
      done.kind = EngineEvent::Kind::kDone;
      done.finish = stop ? FinishReason::kStop : FinishReason::kLength;
      done.usage = {r.p.prompt_positions, r.generated};
      finish(r, std::move(done));
    } else {
      r.next_token = token;
    }
  }
  if (metrics_ != nullptr && tokens > 0) metrics_->add_tokens(tokens, now);
}

void ServingEngine::publish_metrics() {
  if (metrics_ == nullptr) return;
  int64_t queued = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queued = static_cast<int64_t>(queue_.size());
  }
  metrics_->set_load(queued, static_cast<int64_t>(running_.size()));
  metrics_->set_kv(backend_->allocated_positions() * options_.bytes_per_position, reserved_bytes_,
                   options_.kv_budget_bytes);
}

bool ServingEngine::step() {
  StepMessage m;
  if (is_root()) m = plan();
  if (group_ != nullptr && group_->size() > 1) m = broadcast_step(m, *group_);  // every rank: rank 0's step
  std::map<int64_t, at::Tensor> logits;
  const bool sharded = group_ != nullptr && group_->size() > 1;
  try {
    apply(m, &logits);
  } catch (const std::exception& e) {
    // On one device a failed step (e.g. an allocation) fails the requests it touched and the server goes on.
    // Sharded, the ranks could now disagree about the sequences: the error ends the job (every rank, loudly).
    if (sharded) throw;
    logits.clear();
    std::vector<int64_t> touched;
    for (const StepMessage::Prefill& p : m.prefill) touched.push_back(p.id);
    for (const auto& d : m.decode) touched.push_back(d.first);
    for (int64_t id : touched) {
      auto it = running_.find(id);
      if (it == running_.end() || it->second.finished) continue;
      EngineEvent error;
      error.kind = EngineEvent::Kind::kError;
      error.text = str_cat("generation failed: ", e.what());
      finish(it->second, std::move(error));
    }
    m.prefill.clear();  // consume() must not count the failed chunk
  }
  if (is_root()) {
    consume(m, logits);
    publish_metrics();
  }
  return !m.shutdown;
}

void ServingEngine::run() {
  while (step()) {
  }
}

}  // namespace gsa::serve
