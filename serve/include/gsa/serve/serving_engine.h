// The serving engine: a bounded queue, admission control on KV memory, and continuous batching of decode steps
// across requests; on an sp group every rank runs it in lockstep (rank 0 decides, step_message.h).
//
// Contract:
// - submit() (rank 0, any thread) queues a request or returns why not, as an ApiError with HTTP 503: the queue
//   is full, the request's KV cache could never fit the budget (prompt + max_new_tokens positions, in
//   kKvBlockPositions blocks), or the engine is draining; or with HTTP 400 on an sp group when the prompt has
//   fewer positions than the group has ranks (each rank's shard needs one). Admission reserves the request's worst case against
//   the budget, so an admitted request never runs out of KV memory; the cache itself grows in blocks as tokens
//   come (gsa_kv_cache_allocated_bytes) and reservations wait in the queue until enough is free.
// - Each step: drop finished and cancelled requests; admit from the queue (FIFO) while max_running and the
//   budget allow; run one prefill chunk (prefill_chunk positions of the oldest request still prefilling, so a
//   long prompt never stalls running decodes for more than one chunk); then one decode step that advances every
//   running request by one token. Rank 0 samples each request with its own Sampler seeded by the request's seed,
//   so a fixed seed gives the same completion whatever else runs.
// - Events go to the request's callback on the engine thread, in order: kText deltas (valid UTF-8, stop sequences
//   cut, text_stream.h), then exactly one kDone or kError. A request stops at <eos>, a stop sequence, or
//   max_new_tokens. Setting *cancelled (any thread) drops it at the next step with no further event. On one
//   device a step that throws fails the requests it ran (kError) and the engine goes on; on an sp group the
//   exception propagates (the ranks could disagree after it) and ends the job.
// - drain(): submit() refuses new requests; run() returns once the queue and the running set are empty (every
//   rank leaves run() after the same shutdown step). On an sp group rank 0 broadcasts a step at least every
//   idle_tick, so the other ranks' receive never reaches the communicator's timeout.
// - Not thread-safe except submit(), drain() and the cancelled flags: step()/run() belong to one thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "gsa/parallel/communicator.h"
#include "gsa/runtime/generation.h"
#include "gsa/runtime/model_tokenizer.h"
#include "gsa/serve/api_types.h"
#include "gsa/serve/sequence_backend.h"
#include "gsa/serve/serve_metrics.h"
#include "gsa/serve/step_message.h"
#include "gsa/serve/text_stream.h"

namespace gsa::serve {

struct EngineRequest {
  std::vector<int64_t> context;    // gisted token ids
  std::vector<int64_t> suffix;     // raw token ids
  SamplingOptions sampling;        // max_new_tokens, temperature, top_p, seed (<eos> always stops)
  std::vector<std::string> stop;   // stop sequences
};

struct EngineEvent {
  enum class Kind { kText, kDone, kError };
  Kind kind = Kind::kText;
  std::string text;                          // kText: the delta; kError: the message
  FinishReason finish = FinishReason::kLength;  // kDone
  CompletionUsage usage;                     // kDone
};
using EventCallback = std::function<void(const EngineEvent&)>;

struct EngineOptions {
  int64_t max_queue = 64;            // waiting requests; more get 503
  int64_t max_running = 16;          // requests decoded together
  int64_t prefill_chunk = 256;       // prompt positions per step
  int64_t kv_budget_bytes = int64_t{1} << 30;
  int64_t bytes_per_position = 0;    // kv_bytes_per_position(model), > 0
  std::chrono::milliseconds idle_tick{250};
};

class ServingEngine {
 public:
  // group: the sp group when sharded (rank 0 of it schedules), nullptr on one device. tokenizer: the model's
  // (runtime/model_tokenizer.h: text, gist ids, end of sequence); nullptr = the byte tokenizer with its gists.
  ServingEngine(std::unique_ptr<SequenceBackend> backend, const GistOptions& gist, EngineOptions options,
                ServeMetrics* metrics, Communicator* group,
                std::shared_ptr<const ModelTokenizer> tokenizer = nullptr);
  const ModelTokenizer& tokenizer() const { return *tokenizer_; }

  std::optional<ApiError> submit(EngineRequest request, EventCallback on_event,
                                 std::shared_ptr<std::atomic<bool>> cancelled);
  void drain();
  bool step();  // one step; false after the shutdown step
  void run();   // step() until shutdown

  // Positions a request's layout takes (gists included), as admission counts them.
  int64_t prompt_positions(const std::vector<int64_t>& context, const std::vector<int64_t>& suffix) const;

 private:
  struct Pending {
    int64_t id = 0;
    EngineRequest request;
    EventCallback on_event;
    std::shared_ptr<std::atomic<bool>> cancelled;
    int64_t prompt_positions = 0;
    int64_t reserved_bytes = 0;
    std::chrono::steady_clock::time_point arrived;
  };
  struct Running {
    Pending p;
    std::unique_ptr<Sampler> sampler;
    std::unique_ptr<TextStream> text;
    int64_t prefilled = 0;
    std::optional<int64_t> next_token;  // sampled, to append at the next decode step
    int64_t generated = 0;
    bool finished = false;
    std::chrono::steady_clock::time_point last_token;
  };

  StepMessage plan();                         // rank 0
  void apply(const StepMessage& message, std::map<int64_t, at::Tensor>* logits);  // every rank
  void consume(const StepMessage& m, const std::map<int64_t, at::Tensor>& logits);  // rank 0: sample, emit, finish
  void finish(Running& r, EngineEvent event);
  void publish_metrics();
  bool is_root() const { return group_ == nullptr || group_->rank() == 0; }

  std::unique_ptr<SequenceBackend> backend_;
  std::shared_ptr<const ModelTokenizer> tokenizer_;
  GistOptions gist_;
  EngineOptions options_;
  ServeMetrics* metrics_;
  Communicator* group_;

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Pending> queue_;   // GUARDED_BY(mu_)
  bool draining_ = false;       // GUARDED_BY(mu_)
  int64_t next_id_ = 1;         // GUARDED_BY(mu_)

  std::map<int64_t, Running> running_;  // engine thread only, in admission order (ids grow)
  int64_t reserved_bytes_ = 0;          // engine thread only
};

}  // namespace gsa::serve
