// The serving API without sockets or a model: OpenAI request parsing (every field, every kind of bad input),
// response rendering read back by the JSON reader (the independent parse), streamed UTF-8 text against Python's
// bytes.decode("utf-8", "replace") (expected strings computed with Python 3.11 and written here), stop sequences,
// the step message round trip, and the Prometheus text.
#include <gtest/gtest.h>

#include <random>

#include "gsa/runtime/error.h"
#include "gsa/runtime/json_reader.h"
#include "gsa/runtime/unicode_text.h"
#include "gsa/serve/api_codec.h"
#include "gsa/serve/serve_metrics.h"
#include "gsa/serve/step_message.h"
#include "gsa/serve/text_stream.h"

namespace gsa::serve {
namespace {

CompletionCall parse_ok(const std::string& body, bool chat = false) {
  auto parsed = parse_completion_call(body, chat);
  if (auto* e = std::get_if<ApiError>(&parsed)) ADD_FAILURE() << body << " -> " << e->message;
  return std::holds_alternative<CompletionCall>(parsed) ? std::get<CompletionCall>(parsed) : CompletionCall{};
}

TEST(ServeApi, ParsesEveryImplementedField) {
  CompletionCall c = parse_ok(
      R"({"model":"gsa","prompt":"?k7=","context":"k7=v2","max_tokens":12,"temperature":0.5,"top_p":0.25,)"
      R"("seed":-3,"stop":["\n","END"],"stream":true,"stream_options":{"include_usage":true},"n":1,"user":"u",)"
      R"("logprobs":null})");
  EXPECT_EQ(c.model, "gsa");
  EXPECT_EQ(c.prompt, "?k7=");
  EXPECT_EQ(c.context, "k7=v2");
  EXPECT_EQ(c.max_tokens, 12);
  EXPECT_EQ(c.temperature, 0.5);
  EXPECT_EQ(c.top_p, 0.25);
  ASSERT_TRUE(c.seed.has_value());
  EXPECT_EQ(*c.seed, -3);
  EXPECT_EQ(c.stop, (std::vector<std::string>{"\n", "END"}));
  EXPECT_TRUE(c.stream);
  EXPECT_TRUE(c.stream_include_usage);
  CompletionCall d = parse_ok(R"({"model":"m","prompt":"p"})");
  EXPECT_EQ(d.max_tokens, 16);  // OpenAI's defaults
  EXPECT_EQ(d.temperature, 1.0);
  EXPECT_FALSE(d.seed.has_value());
  EXPECT_EQ(parse_ok(R"({"model":"m","prompt":"p","stop":"x"})").stop, std::vector<std::string>{"x"});
}

TEST(ServeApi, RendersChatMessagesIntoContextAndPrompt) {
  CompletionCall c = parse_ok(
      R"({"model":"gsa","context":"doc ","max_completion_tokens":3,"messages":[{"role":"system","content":"be brief"},)"
      R"({"role":"user","content":"hi"}]})",
      true);
  EXPECT_TRUE(c.chat);
  EXPECT_EQ(c.context, "doc system: be brief\n");
  EXPECT_EQ(c.prompt, "user: hi\nassistant: ");
  EXPECT_EQ(c.max_tokens, 3);
}

TEST(ServeApi, EveryBadRequestIsA400NamingTheField) {
  struct Case {
    std::string body;
    bool chat;
    std::string param;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {R"({"model":"gsa","prompt":)", false, "", "malformed JSON"},
      {R"([1,2])", false, "", "must be a JSON object"},
      {R"({"prompt":"x"})", false, "model", "missing required field 'model'"},
      {R"({"model":"gsa"})", false, "prompt", "missing required field 'prompt'"},
      {R"({"model":"gsa","prompt":1})", false, "prompt", "must be a string"},
      {R"({"model":"gsa","prompt":["a","b"]})", false, "prompt", "arrays of prompts"},
      {R"({"model":"gsa","prompt":"x","max_tokens":"9"})", false, "max_tokens", "must be an integer"},
      {R"({"model":"gsa","prompt":"x","max_tokens":0})", false, "max_tokens", ">= 1"},
      {R"({"model":"gsa","prompt":"x","max_tokens":1.5})", false, "max_tokens", "must be an integer"},
      {R"({"model":"gsa","prompt":"x","temperature":-0.1})", false, "temperature", "[0, 2]"},
      {R"({"model":"gsa","prompt":"x","temperature":1e400})", false, "temperature", "[0, 2]"},
      {R"({"model":"gsa","prompt":"x","temperature":"hot"})", false, "temperature", "must be a number"},
      {R"({"model":"gsa","prompt":"x","top_p":0})", false, "top_p", "(0, 1]"},
      {R"({"model":"gsa","prompt":"x","top_p":1e-400})", false, "top_p", "(0, 1]"},
      {R"({"model":"gsa","prompt":"x","seed":1.5})", false, "seed", "must be an integer"},
      {R"({"model":"gsa","prompt":"x","stop":[]})", false, "stop", "1 to 4"},
      {R"({"model":"gsa","prompt":"x","stop":["a","b","c","d","e"]})", false, "stop", "1 to 4"},
      {R"({"model":"gsa","prompt":"x","stop":[""]})", false, "stop", "must not be empty"},
      {R"({"model":"gsa","prompt":"x","stop":[1]})", false, "stop", "must be a string"},
      {R"({"model":"gsa","prompt":"x","stream":"yes"})", false, "stream", "must be a boolean"},
      {R"({"model":"gsa","prompt":"x","stream_options":{"include_usage":true}})", false, "stream_options",
       "only allowed with stream"},
      {R"({"model":"gsa","prompt":"x","stream":true,"stream_options":{"x":1}})", false, "stream_options",
       "unknown field"},
      {R"({"model":"gsa","prompt":"x","n":2})", false, "n", "must be 1"},
      {R"({"model":"gsa","prompt":"x","echo":true})", false, "echo", "not supported"},
      {R"({"model":"gsa","prompt":"x","frobnicate":1})", false, "frobnicate", "unknown field 'frobnicate'"},
      {R"({"model":"gsa","prompt":"x","prompt":"y"})", false, "", "malformed JSON"},  // duplicate key
      {R"({"model":"gsa","prompt":"x"})", true, "prompt", "unknown field"},           // chat has no prompt
      {R"({"model":"gsa","messages":[]})", true, "messages", "must not be empty"},
      {R"({"model":"gsa","messages":{}})", true, "messages", "must be an array"},
      {R"({"model":"gsa","messages":[{"role":"user"}]})", true, "messages", "content must be a string"},
      {R"({"model":"gsa","messages":[{"role":"bot","content":"x"}]})", true, "messages", "role must be"},
      {R"({"model":"gsa","messages":[{"role":"user","content":"x","mood":1}]})", true, "messages", "unknown field"},
  };
  for (const Case& c : cases) {
    auto parsed = parse_completion_call(c.body, c.chat);
    ASSERT_TRUE(std::holds_alternative<ApiError>(parsed)) << c.body;
    const ApiError& e = std::get<ApiError>(parsed);
    EXPECT_EQ(e.status, 400) << c.body;
    EXPECT_EQ(e.type, "invalid_request_error") << c.body;
    EXPECT_EQ(e.param, c.param) << c.body;
    EXPECT_NE(e.message.find(c.message_part), std::string::npos) << c.body << " -> " << e.message;
  }
}

TEST(ServeApi, ResponsesReadBackWithEscapedText) {
  const std::string text = "a \"quote\", a \\ backslash,\n\ttabs, \x01 control, caf\xc3\xa9 \xf0\x9f\x98\x80";
  CompletionCall call = parse_ok(R"({"model":"gsa","prompt":"x"})");
  const ResponseId rid{"cmpl-9", 1700000000, "gsa"};
  const json::Value v = json::parse_json(render_completion(call, rid, text, FinishReason::kLength, {54, 12}));
  EXPECT_EQ(v.find("id")->string_value, "cmpl-9");
  EXPECT_EQ(v.find("object")->string_value, "text_completion");
  EXPECT_EQ(v.find("created")->int_value, 1700000000);
  const json::Value& choice = v.find("choices")->array_items.at(0);
  EXPECT_EQ(choice.find("text")->string_value, text);
  EXPECT_EQ(choice.find("finish_reason")->string_value, "length");
  EXPECT_EQ(v.find("usage")->find("total_tokens")->int_value, 66);

  CompletionCall chat = parse_ok(R"({"model":"gsa","messages":[{"role":"user","content":"x"}]})", true);
  const json::Value c = json::parse_json(render_completion(chat, rid, text, FinishReason::kStop, {1, 2}));
  EXPECT_EQ(c.find("object")->string_value, "chat.completion");
  EXPECT_EQ(c.find("choices")->array_items.at(0).find("message")->find("content")->string_value, text);

  const std::string chunk = render_stream_chunk(chat, rid, "hi", std::nullopt, true);
  ASSERT_EQ(chunk.substr(0, 6), "data: ");
  ASSERT_EQ(chunk.substr(chunk.size() - 2), "\n\n");
  const json::Value s = json::parse_json(chunk.substr(6));
  const json::Value& delta = *s.find("choices")->array_items.at(0).find("delta");
  EXPECT_EQ(delta.find("role")->string_value, "assistant");
  EXPECT_EQ(delta.find("content")->string_value, "hi");
  EXPECT_EQ(s.find("choices")->array_items.at(0).find("finish_reason")->kind, json::Value::Kind::kNull);

  ApiError e;
  e.status = 404;
  e.message = "no \"such\" model";
  e.param = "model";
  const json::Value err = *json::parse_json(render_error(e)).find("error");
  EXPECT_EQ(err.find("message")->string_value, e.message);
  EXPECT_EQ(err.find("param")->string_value, "model");
  EXPECT_EQ(err.find("code")->kind, json::Value::Kind::kNull);
}

TEST(ServeApi, ClientRequestBodyParsesBackToTheSameCall) {
  CompletionCall call;
  call.model = "gsa";
  call.prompt = "?k7=\n";
  call.context = "ctx \"q\"";
  call.max_tokens = 9223372036854775807;
  call.temperature = 0.7;
  call.top_p = 0.3;
  call.seed = 42;
  call.stop = {"\n\n"};
  call.stream = true;
  CompletionCall back = parse_ok(render_completion_call(call));
  EXPECT_EQ(back.prompt, call.prompt);
  EXPECT_EQ(back.context, call.context);
  EXPECT_EQ(back.max_tokens, call.max_tokens);
  EXPECT_EQ(back.temperature, call.temperature);
  EXPECT_EQ(back.top_p, call.top_p);
  EXPECT_EQ(back.seed, call.seed);
  EXPECT_EQ(back.stop, call.stop);
  EXPECT_TRUE(back.stream);
}

// Byte strings and Python's bytes.decode("utf-8", "replace") of them (UTF-8 of the result).
const std::vector<std::pair<std::string, std::string>> kPythonDecoded = {
    {"\xe2\x82", "\xef\xbf\xbd"},
    {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    {"a\xf0\x9f\x98\x80" "b", "a\xf0\x9f\x98\x80" "b"},
    {"\xf0\x9f\x98", "\xef\xbf\xbd"},
    {"\xc3(", "\xef\xbf\xbd("},
    {"\xe0\x80\xaf", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    {"\xe2\x82\xac\xff", "\xe2\x82\xac\xef\xbf\xbd"},
};

TEST(TextStream, AnySplitIntoTokensGivesPythonsDecoding) {
  std::mt19937 rng(7);
  for (const auto& [bytes, expected] : kPythonDecoded) {
    ASSERT_EQ(unicode::to_valid_utf8(bytes), expected);
    for (int trial = 0; trial < 50; ++trial) {
      TextStream stream;
      std::string got;
      for (size_t at = 0; at < bytes.size();) {
        const size_t n = 1 + rng() % 3;
        got += stream.append(bytes.substr(at, n));
        at += n;
      }
      got += stream.finish();
      EXPECT_EQ(got, expected) << "trial " << trial;
      EXPECT_EQ(stream.text(), expected);
    }
  }
  // A character split over tokens is held back until it completes.
  TextStream stream;
  EXPECT_EQ(stream.append("a\xf0\x9f"), "a");
  EXPECT_EQ(stream.append("\x98"), "");
  EXPECT_EQ(stream.append("\x80"), "\xf0\x9f\x98\x80");
  EXPECT_EQ(incomplete_utf8_tail("x\xe2\x82"), 2u);
  EXPECT_EQ(incomplete_utf8_tail("x\xed\xa0"), 0u);  // a surrogate never completes
  EXPECT_EQ(incomplete_utf8_tail("\xe2\x82\xac"), 0u);
}

TEST(TextStream, StopSequencesAreCutAndNeverStreamed) {
  TextStream stream({"o W", "!!"});
  std::string streamed;
  for (const char* token : {"Hel", "lo", " W", "orld"}) streamed += stream.append(token);
  EXPECT_TRUE(stream.stopped());
  EXPECT_EQ(streamed, "Hell");  // "o" was held back: it began the stop sequence
  EXPECT_EQ(stream.finish(), "");
  EXPECT_EQ(stream.append("more"), "");
  TextStream none({"zz"});
  std::string all;
  for (const char* token : {"a", "z", "b", "z"}) all += none.append(token);
  all += none.finish();
  EXPECT_FALSE(none.stopped());
  EXPECT_EQ(all, "azbz");
}

TEST(StepMessage, RoundTripsAndRejectsTruncatedArrays) {
  StepMessage m;
  m.remove = {3, 9};
  m.add.push_back({4, {10, 11, 12}, {}, 300});
  m.add.push_back({5, {}, {7}, 9223372036854775807});
  m.prefill.push_back({4, 256});
  m.decode = {{1, 65}, {2, 258}};
  const std::vector<int64_t> flat = encode_step(m);
  const StepMessage back = decode_step(flat);
  EXPECT_EQ(encode_step(back), flat);
  EXPECT_EQ(back.add.at(1).max_positions, 9223372036854775807);
  EXPECT_EQ(back.add.at(0).context, (std::vector<int64_t>{10, 11, 12}));
  EXPECT_EQ(back.decode, m.decode);
  EXPECT_FALSE(StepMessage{}.has_work());
  StepMessage stop;
  stop.shutdown = true;
  EXPECT_TRUE(decode_step(encode_step(stop)).shutdown);
  for (size_t cut = 0; cut < flat.size(); ++cut) {
    EXPECT_THROW(decode_step(std::vector<int64_t>(flat.begin(), flat.begin() + cut)), Error) << cut;
  }
  std::vector<int64_t> longer = flat;
  longer.push_back(0);
  EXPECT_THROW(decode_step(longer), Error);
}

TEST(ServeMetrics, PrometheusTextHasCumulativeBucketsAndRates) {
  ServeMetrics metrics;
  metrics.set_load(3, 2);
  metrics.set_kv(1024, 4096, 1 << 20);
  const auto now = ServeMetrics::Clock::now();
  metrics.add_tokens(30, now);
  metrics.add_tokens(20, now);
  for (double s : {0.003, 0.02, 0.02, 7.0}) metrics.observe_first_token(s);
  metrics.count_request("finished");
  metrics.count_request("finished");
  const std::string text = metrics.prometheus();
  auto has = [&](const std::string& line) {
    EXPECT_NE(text.find(line + "\n"), std::string::npos) << "missing '" << line << "' in\n" << text;
  };
  has("gsa_queue_depth 3");
  has("gsa_running_requests 2");
  has("gsa_tokens_per_second 5");  // 50 tokens over the 10 s window
  has("gsa_kv_cache_allocated_bytes 1024");
  has("gsa_kv_cache_reserved_bytes 4096");
  has("gsa_generated_tokens_total 50");
  has("gsa_requests_total{outcome=\"finished\"} 2");
  has("gsa_time_to_first_token_seconds_bucket{le=\"0.005\"} 1");
  has("gsa_time_to_first_token_seconds_bucket{le=\"0.025\"} 3");
  has("gsa_time_to_first_token_seconds_bucket{le=\"5\"} 3");
  has("gsa_time_to_first_token_seconds_bucket{le=\"10\"} 4");
  has("gsa_time_to_first_token_seconds_bucket{le=\"+Inf\"} 4");
  has("gsa_time_to_first_token_seconds_count 4");
  has("# TYPE gsa_time_per_output_token_seconds histogram");
}

}  // namespace
}  // namespace gsa::serve
