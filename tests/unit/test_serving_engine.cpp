// The serving engine on a tiny random model, without sockets: continuous batching gives every request exactly
// the completion a Generator computes for it alone (the oracle: one request, one prefill); chunked prefill and
// the block-grown KV cache equal a whole prefill and a full recompute; admission control, the bounded queue,
// cancellation and draining; the sampling edge cases; and the HTTP request handler end to end with a recording
// sink in place of the transport.
#include <gtest/gtest.h>

#include <random>

#include "common/model_fixtures.h"
#include "common/tolerance.h"
#include "gsa/runtime/attention_plan.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/json_reader.h"
#include "gsa/runtime/tokenizer.h"
#include "gsa/runtime/unicode_text.h"
#include "gsa/serve/inference_engine.h"
#include "gsa/serve/request_handler.h"
#include "gsa/serve/serving_engine.h"

namespace gsa::serve {
namespace {

GistOptions gist_options(int64_t levels) {
  GistOptions g;
  g.levels = levels;
  g.chunk = 3;
  g.fanout = 2;
  g.sink = 2;
  return g;
}

std::vector<int64_t> random_ids(int64_t n, std::mt19937& rng) {
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < n; ++i) ids.push_back(32 + rng() % 90);
  return ids;
}

// What one request alone gives: a Generator over its layout, text as the engine renders it.
std::string alone(const LlamaModel& model, const EngineRequest& r, const GistOptions& gist) {
  GistLayout layout = request_layout(r.context, r.suffix, gist);
  SamplingOptions sampling = r.sampling;
  sampling.stop_tokens = {ByteTokenizer::kEos};
  sampling.vocab_limit = ByteTokenizer::kFirstGist;  // text ids only: no gist (used or not) nor spare row 263
  Generator gen(model, AttentionOptions{}, layout, saturating_positions(layout.size(), sampling.max_new_tokens));
  std::vector<int64_t> tokens = gen.generate(sampling);
  if (!tokens.empty() && tokens.back() == ByteTokenizer::kEos) tokens.pop_back();
  return unicode::to_valid_utf8(ByteTokenizer().decode(tokens));
}

struct Outcome {
  std::string text;
  int events = 0;
  bool done = false, failed = false;
  FinishReason finish = FinishReason::kLength;
  CompletionUsage usage;
};

EventCallback record(Outcome* o) {
  return [o](const EngineEvent& e) {
    ++o->events;
    if (e.kind == EngineEvent::Kind::kText) o->text += e.text;
    if (e.kind == EngineEvent::Kind::kDone) {
      o->done = true;
      o->finish = e.finish;
      o->usage = e.usage;
    }
    if (e.kind == EngineEvent::Kind::kError) o->failed = true;
  };
}

std::unique_ptr<ServingEngine> make_engine(const LlamaModel& model, const GistOptions& gist, EngineOptions options,
                                           ServeMetrics* metrics = nullptr) {
  options.bytes_per_position = kv_bytes_per_position(model.options());
  options.idle_tick = std::chrono::milliseconds(5);
  return std::make_unique<ServingEngine>(std::make_unique<LocalBackend>(model, AttentionOptions{}), gist, options,
                                         metrics, nullptr);
}

TEST(ServingEngine, ContinuousBatchingGivesEachRequestItsCompletionAlone) {
  for (int64_t levels : {1, 2}) {
    LlamaModel model = LlamaModel::create(test::tiny_model_options(), 3, at::kCPU);
    const GistOptions gist = gist_options(levels);
    EngineOptions options;
    options.max_running = 3;  // 7 requests: some wait in the queue, and join mid-way
    options.prefill_chunk = 7;
    ServeMetrics metrics;
    auto engine = make_engine(model, gist, options, &metrics);
    std::mt19937 rng(11 + levels);
    std::vector<EngineRequest> requests;
    std::vector<Outcome> outcomes(7);
    for (int i = 0; i < 7; ++i) {
      EngineRequest r;
      r.context = random_ids(i * 9 % 40, rng);
      r.suffix = random_ids(1 + i % 4, rng);
      r.sampling.max_new_tokens = 3 + i;
      r.sampling.temperature = i % 2 == 0 ? 0.0 : 0.9;
      r.sampling.top_p = i % 3 == 0 ? 0.8 : 1.0;
      r.sampling.seed = 100 + i;
      requests.push_back(r);
      ASSERT_FALSE(engine->submit(r, record(&outcomes[i]), nullptr).has_value());
    }
    for (int step = 0; step < 500 && !std::all_of(outcomes.begin(), outcomes.end(), [](auto& o) { return o.done; });
         ++step) {
      engine->step();
    }
    for (int i = 0; i < 7; ++i) {
      ASSERT_TRUE(outcomes[i].done) << "request " << i;
      EXPECT_EQ(outcomes[i].text, alone(model, requests[i], gist)) << "request " << i << ", levels " << levels;
      EXPECT_EQ(outcomes[i].usage.prompt_tokens, request_layout(requests[i].context, requests[i].suffix, gist).size());
      EXPECT_LE(outcomes[i].usage.completion_tokens, requests[i].sampling.max_new_tokens);
    }
    EXPECT_NE(metrics.prometheus().find("gsa_requests_total{outcome=\"finished\"} 7\n"), std::string::npos);
  }
}

// The engine lays prompts out and samples with the model's tokenizer (gist ids from model.gist_token_ids, here
// not the byte tokenizer's; sampling bounded by its text vocabulary): each greedy completion equals a Generator's
// over the layout that tokenizer gives.
TEST(ServingEngine, UsesTheModelTokenizersGistIdsAndVocabulary) {
  ModelOptions o = test::tiny_model_options();
  o.vocab_size = 270;
  o.gist_token_ids = {266, 267};
  LlamaModel model = LlamaModel::create(o, 6, at::kCPU);
  const GistOptions gist = gist_options(2);
  auto tokenizer = std::make_shared<ModelTokenizer>(std::make_shared<ByteTokenizer>(), o, gist.levels);
  EngineOptions options;
  options.bytes_per_position = kv_bytes_per_position(o);
  auto engine = std::make_unique<ServingEngine>(std::make_unique<LocalBackend>(model, AttentionOptions{}), gist,
                                                options, nullptr, nullptr, tokenizer);
  std::mt19937 rng(8);
  std::vector<EngineRequest> requests;
  std::vector<Outcome> outcomes(3);
  for (int i = 0; i < 3; ++i) {
    EngineRequest r;
    r.context = random_ids(30 + 7 * i, rng);
    r.suffix = random_ids(2, rng);
    r.sampling.max_new_tokens = 5;
    requests.push_back(r);
    ASSERT_FALSE(engine->submit(r, record(&outcomes[i]), nullptr).has_value());
  }
  for (int step = 0; step < 200 && !std::all_of(outcomes.begin(), outcomes.end(), [](auto& x) { return x.done; });
       ++step) {
    engine->step();
  }
  for (int i = 0; i < 3; ++i) {
    const GistLayout layout = request_layout(requests[i].context, requests[i].suffix, gist, *tokenizer);
    EXPECT_NE(std::find(layout.tokens.begin(), layout.tokens.end(), 266), layout.tokens.end());
    SamplingOptions sampling = requests[i].sampling;
    sampling.stop_tokens = {ByteTokenizer::kEos};
    sampling.vocab_limit = ByteTokenizer::kFirstGist;  // text ids: not the byte tokenizer's gists nor the model's 266
    Generator gen(model, AttentionOptions{}, layout, layout.size() + sampling.max_new_tokens);
    std::vector<int64_t> tokens = gen.generate(sampling);
    if (!tokens.empty() && tokens.back() == ByteTokenizer::kEos) tokens.pop_back();
    ASSERT_TRUE(outcomes[i].done);
    EXPECT_EQ(outcomes[i].text, unicode::to_valid_utf8(tokenizer->decode(tokens))) << "request " << i;
  }
}

TEST(ServingEngine, ChunkedPrefillEqualsOnePrefill) {
  LlamaModel model = LlamaModel::create(test::tiny_model_options(), 5, at::kCPU);
  std::mt19937 rng(2);
  for (int64_t levels : {1, 2}) {
    const GistLayout layout = request_layout(random_ids(45, rng), random_ids(4, rng), gist_options(levels));
    Generator whole(model, AttentionOptions{}, layout, layout.size() + 4);
    at::Tensor expected = whole.prefill();
    for (int64_t chunk : {1, 5, 13}) {
      Generator pieces(model, AttentionOptions{}, layout, layout.size() + 4);
      at::Tensor got;
      int64_t calls = 0;
      while (pieces.prompt_remaining() > 0) {
        got = pieces.prefill_chunk(chunk);
        ++calls;
        if (pieces.prompt_remaining() > 0) {
          EXPECT_FALSE(got.defined());
        }
      }
      EXPECT_EQ(calls, (layout.size() + chunk - 1) / chunk);
      GSA_EXPECT_CLOSE(got, expected, 1e-5, 1e-4) << "levels " << levels << " chunk " << chunk;
      const at::Tensor stepped = pieces.step(65);  // before the recompute reads the grown layout
      GSA_EXPECT_CLOSE(stepped, test::full_recompute_last(model, pieces.layout(), AttentionOptions{}), 1e-5, 1e-4);
    }
  }
}

TEST(ServingEngine, KvCacheGrowsInBlocksAndStaysExact) {
  LlamaModel model = LlamaModel::create(test::tiny_model_options(), 7, at::kCPU);
  std::mt19937 rng(4);
  const GistLayout layout = request_layout(random_ids(170, rng), random_ids(3, rng), gist_options(1));
  ASSERT_LT(layout.size(), kKvBlockPositions - 2);
  Generator gen(model, AttentionOptions{}, layout, std::numeric_limits<int64_t>::max());  // nothing up front
  gen.prefill();
  EXPECT_EQ(gen.cache_positions(), kKvBlockPositions);
  while (gen.layout().size() < kKvBlockPositions + 2) {
    at::Tensor logits = gen.step(70 + gen.layout().size() % 20);
    if (gen.layout().size() >= kKvBlockPositions - 1) {
      GSA_EXPECT_CLOSE(logits, test::full_recompute_last(model, gen.layout(), AttentionOptions{}), 1e-5, 1e-4)
          << gen.layout().size();
    }
  }
  EXPECT_EQ(gen.cache_positions(), 2 * kKvBlockPositions);
}

TEST(ServingEngine, AdmissionControlRefusesWhatCannotFitAndQueuesTheRest) {
  LlamaModel model = LlamaModel::create(test::tiny_model_options(), 3, at::kCPU);
  const GistOptions gist = gist_options(1);
  EngineOptions options;
  options.kv_budget_bytes = kKvBlockPositions * kv_bytes_per_position(model.options());  // one block
  options.max_queue = 2;
  ServeMetrics metrics;
  auto engine = make_engine(model, gist, options, &metrics);
  std::mt19937 rng(5);
  EngineRequest big;
  big.suffix = random_ids(10, rng);
  big.sampling.max_new_tokens = kKvBlockPositions;  // 10 + 256 positions: two blocks
  std::optional<ApiError> refused = engine->submit(big, nullptr, nullptr);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->status, 503);
  EXPECT_EQ(refused->code, "kv_cache_too_small");
  EXPECT_NE(refused->message.find("2 blocks"), std::string::npos) << refused->message;
  big.sampling.max_new_tokens = std::numeric_limits<int64_t>::max();  // no overflow: still "cannot fit"
  EXPECT_EQ(engine->submit(big, nullptr, nullptr)->code, "kv_cache_too_small");

  // Two requests of one block each: the second waits for the first to finish (never both at once).
  std::vector<std::string> log;
  std::vector<EngineRequest> small(2);
  for (int i = 0; i < 2; ++i) {
    small[i].suffix = random_ids(6, rng);
    small[i].sampling.max_new_tokens = 5;
    ASSERT_FALSE(engine
                     ->submit(
                         small[i],
                         [&log, i](const EngineEvent& e) {
                           log.push_back(str_cat(i, e.kind == EngineEvent::Kind::kDone ? " done" : " text"));
                         },
                         nullptr)
                     .has_value());
  }
  std::optional<ApiError> full = engine->submit(small[0], nullptr, nullptr);
  ASSERT_TRUE(full.has_value());
  EXPECT_EQ(full->code, "queue_full");
  for (int step = 0; step < 100 && (log.empty() || log.back() != "1 done"); ++step) engine->step();
  const auto first_done = std::find(log.begin(), log.end(), "0 done");
  const auto second_starts = std::find_if(log.begin(), log.end(), [](auto& s) { return s[0] == '1'; });
  ASSERT_NE(first_done, log.end());
  ASSERT_NE(second_starts, log.end());
  EXPECT_LT(first_done, second_starts);
  EXPECT_EQ(log.back(), "1 done");
}

TEST(ServingEngine, CancelledRequestsAreDroppedAndDrainEndsTheLoop) {
  LlamaModel model = LlamaModel::create(test::tiny_model_options(), 3, at::kCPU);
  const GistOptions gist = gist_options(1);
  ServeMetrics metrics;
  auto engine = make_engine(model, gist, EngineOptions{}, &metrics);
  std::mt19937 rng(6);
  EngineRequest r;
  r.suffix = random_ids(5, rng);
  r.sampling.max_new_tokens = 100000;
  r.sampling.temperature = 1.0;
  auto cancelled = std::make_shared<std::atomic<bool>>(false);
  Outcome gone, kept;
  ASSERT_FALSE(engine->submit(r, record(&gone), cancelled).has_value());
  r.sampling.max_new_tokens = 6;
  ASSERT_FALSE(engine->submit(r, record(&kept), nullptr).has_value());
  while (gone.events == 0) engine->step();
  cancelled->store(true);
  const int events = gone.events;
  engine->drain();
  EngineRequest late = r;
  std::optional<ApiError> refused = engine->submit(late, nullptr, nullptr);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->code, "shutting_down");
  engine->run();  // returns once the kept request finished and the cancelled one was dropped
  EXPECT_TRUE(kept.done);
  EXPECT_EQ(gone.events, events);
  EXPECT_FALSE(gone.done);
  const std::string text = metrics.prometheus();
  EXPECT_NE(text.find("gsa_requests_total{outcome=\"cancelled\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("gsa_running_requests 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("gsa_kv_cache_allocated_bytes 0\n"), std::string::npos) << text;
}

TEST(Sampling, EdgeCasesGetClearErrorsOrTheMostLikelyToken) {
  SamplingOptions s;
  for (double t : {std::numeric_limits<double>::infinity(), std::nan(""), -1.0}) {
    s.temperature = t;
    EXPECT_NE(invalid_sampling(s).find("temperature must be a finite number >= 0"), std::string::npos) << t;
    EXPECT_THROW(Sampler(s, {}), Error);
  }
  s.temperature = 1.0;
  for (double p : {0.0, std::nan(""), 1.5}) {
    s.top_p = p;
    EXPECT_NE(invalid_sampling(s).find("top_p must be in (0, 1]"), std::string::npos) << p;
  }
  s.top_p = 1.0;
  s.max_new_tokens = 0;
  EXPECT_NE(invalid_sampling(s).find("max_new_tokens must be >= 1"), std::string::npos);
  EXPECT_EQ(saturating_positions(5, std::numeric_limits<int64_t>::max()), std::numeric_limits<int64_t>::max());

  // top_p far below float precision and a tiny temperature keep the most likely token (the argmax oracle).
  at::Tensor logits = at::tensor(std::vector<float>{0.f, 5.f, 4.9f, -2.f, 10.f, 9.99f});
  s.max_new_tokens = 1;
  s.top_p = 1e-50;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    s.seed = seed;
    EXPECT_EQ(Sampler(s, {}).sample(logits), 4);
  }
  s.top_p = 1.0;
  s.temperature = 1e-300;
  EXPECT_EQ(Sampler(s, {}).sample(logits), 4);
  EXPECT_EQ(Sampler(s, {4}).sample(logits), 5);  // forbidden ids never come out
}

// Records what the transport would send.
class RecordingSink : public ResponseSink {
 public:
  void respond(HttpResponse r) override { response = std::move(r); }
  void stream_begin() override { calls += "begin;"; }
  void stream_data(std::string events) override {
    calls += "data;";
    data += events;
  }
  void stream_end() override { calls += "end;"; }
  std::optional<HttpResponse> response;
  std::string calls, data;
};

TEST(RequestHandler, AnswersCompletionsAndErrorsWithoutSockets) {
  LlamaModel model = LlamaModel::create(test::tiny_model_options(), 9, at::kCPU);
  const GistOptions gist = gist_options(1);
  ServeMetrics metrics;
  auto engine = make_engine(model, gist, EngineOptions{}, &metrics);
  HandlerOptions options;
  options.api_key = "secret";
  options.max_prompt_tokens = 50;
  RequestHandler handler(*engine, metrics, options);
  auto call = [&](std::string method, std::string target, std::string body, bool auth = true) {
    auto sink = std::make_shared<RecordingSink>();
    std::optional<HttpResponse> r = handler.handle({method, target, auth ? "Bearer secret" : "", body}, sink,
                                                   std::make_shared<std::atomic<bool>>(false));
    for (int step = 0; !r && step < 200 && !sink->response && sink->calls.find("end;") == std::string::npos; ++step) {
      engine->step();
    }
    return std::make_pair(r ? r : sink->response, sink);
  };
  EXPECT_EQ(call("GET", "/health", "", false).first->status, 200);
  EXPECT_EQ(call("GET", "/metrics", "", false).first->content_type, "text/plain; version=0.0.4");
  EXPECT_EQ(call("POST", "/health", "").first->status, 405);
  EXPECT_EQ(call("GET", "/nowhere", "").first->status, 404);
  EXPECT_EQ(call("GET", "/v1/models", "", false).first->status, 401);
  const json::Value models = json::parse_json(call("GET", "/v1/models?x=1", "").first->body);
  EXPECT_EQ(models.find("data")->array_items.at(0).find("id")->string_value, "gsa");
  auto status_of = [&](const std::string& body) { return call("POST", "/v1/completions", body).first->status; };
  EXPECT_EQ(status_of(R"({"model":"other","prompt":"x"})"), 404);
  EXPECT_EQ(status_of(R"({"model":"gsa","prompt":""})"), 400);
  EXPECT_EQ(status_of(R"({"model":"gsa","prompt":")" + std::string(51, 'y') + "\"}"), 400);
  EXPECT_EQ(status_of(R"({"model":"gsa","prompt":"x","max_tokens":99999999999})"), 503);

  const std::string body = R"({"model":"gsa","context":"k3=v9 k7=v2 alpha beta","prompt":"?k7=","max_tokens":9,)"
                           R"("temperature":0)";
  auto [plain, plain_sink] = call("POST", "/v1/completions", body + "}");
  ASSERT_TRUE(plain.has_value());
  ASSERT_EQ(plain->status, 200) << plain->body;
  const json::Value v = json::parse_json(plain->body);
  const std::string text = v.find("choices")->array_items.at(0).find("text")->string_value;
  EngineRequest oracle;
  oracle.context = ByteTokenizer().encode("k3=v9 k7=v2 alpha beta");
  oracle.suffix = ByteTokenizer().encode("?k7=");
  oracle.sampling.max_new_tokens = 9;
  EXPECT_EQ(text, alone(model, oracle, gist));

  auto [streamed, sink] = call("POST", "/v1/completions", body + R"(,"stream":true})");
  EXPECT_FALSE(streamed.has_value());
  EXPECT_EQ(sink->calls.substr(0, 11), "begin;data;");
  EXPECT_EQ(sink->calls.substr(sink->calls.size() - 9), "data;end;");
  std::string joined;
  size_t at = 0, end;
  bool finished = false;
  while ((end = sink->data.find("\n\n", at)) != std::string::npos) {
    const std::string event = sink->data.substr(at, end - at);
    at = end + 2;
    ASSERT_EQ(event.substr(0, 6), "data: ");
    if (event == "data: [DONE]") {
      finished = true;
      break;
    }
    const json::Value chunk = json::parse_json(event.substr(6));
    joined += chunk.find("choices")->array_items.at(0).find("text")->string_value;
  }
  EXPECT_TRUE(finished);
  EXPECT_EQ(at, sink->data.size());
  EXPECT_EQ(joined, text);
}

}  // namespace
}  // namespace gsa::serve
