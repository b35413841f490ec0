// gsa bench serve: what a user of `gsa serve` waits for, on one device, measured through the engine's own decode
// path (Generator::prefill / step for one request, DecodeBatch for many: what LocalBackend runs each
// serving step). The model has the shapes of the config (default configs/llama-1b-gsa.pbtxt: the Llama-3.2-1B
// shapes) and random weights; the prompts are random token ids (gisted context + a 16-token raw suffix).
//
// Two tables, one CSV (--csv, one row per measurement):
// - latency: per context length N and selection budget (the config's, normally adaptive, and a fixed budget of
//   --fixed-k chunks per head), one request: the time to first token (prefill of the whole prompt + the first
//   token's choice, ended by the token reaching the host) and the per-token latency of the loop `gsa generate`
//   runs (one step, the greedy choice on the device, the token to the host, then the next step: median and 90th
//   percentile over --decode-steps steps after two warm-ups, so the cache's block growth shows in p90, not in the
//   median); beside it ahead_ms, a token of the greedy loop ahead of the host (Generator::decode_ahead), with
//   its steps' GPU time and the GPU's idle time before each (gpu_ms, idle_ms: CUDA events; medians), and
//   device_ms, the step's device time (--decode-steps steps enqueued back to back, each fed the last token again,
//   one wait at the end).
// - throughput: --concurrency C requests of --concurrent-tokens context decoded together, one batched step per
//   token (median step time over --decode-steps), tokens/s = C / step time.
// Greedy tokens; weights, prompts and steps are the same for every run of the same flags. The dense peer
// (scripts/peers/serve_dense_peer.py: the same shapes with SDPA prefill and flash decoding) runs in the same
// device call from scripts/gpu_serve_bench.sh; docs/PERFORMANCE.md holds the ratios.
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cli_flags.h"
#include "commands.h"
#include "device_flag.h"
#include "gsa/config/config_loader.h"
#include "gsa/runtime/decode_batch.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/generation.h"
#include "gsa/runtime/gist_layout.h"
#include "gsa/runtime/llama_model.h"
#include "gsa/runtime/memory_tracker.h"
#include "gsa/runtime/op_profile.h"
#include "gsa/runtime/model_tokenizer.h"

namespace gsa::cli {
namespace {

const char* const kHelp =
    "usage: gsa bench serve [flags]\n"
    "\n"
    "Time to first token, per-token decode latency against context length, and batched decode throughput of\n"
    "a model with random weights, through the serving engine's decode path.\n"
    "\n"
    "flags:\n"
    "  --config configs/llama-1b-gsa.pbtxt   model shapes, gist layout and attention (weights are random)\n"
    "  --set a.b=value ...        config overrides (e.g. --set model.num_layers=2)\n"
    "  --tokens 32768,131072,524288,1048576  context tokens N of the latency table\n"
    "  --fixed-k 16               chunks per head of the fixed-budget rows (0: no fixed-budget rows)\n"
    "  --decode-steps 32          timed decode steps per measurement\n"
    "  --settle-ms 0              latency rows: pause after the first token, before the decode steps (lets the\n"
    "                             GPU's clocks settle after a long prefill)\n"
    "  --concurrency 1,4,16,64    requests decoded together in the throughput table (empty: none)\n"
    "  --concurrent-tokens 32768  context tokens of each request there\n"
    "  --device cpu|cuda[:N]      default cpu   --threads N (CPU)\n"
    "  --csv FILE                 also write every row as CSV\n"
    "  --profile                  after each row, 8 more decode steps under the op profiler: device time\n"
    "                             per kernel and host time per operator (the steps' times are not in the row)\n";

constexpr int64_t kSuffixTokens = 16;

// Random prompts laid out with the model's gist ids: n context tokens (gisted) and a 16-token raw suffix, ids
// drawn below the first gist id.
class PromptMaker {
 public:
  PromptMaker(const ModelOptions& model, const GistOptions& gist)
      : gist_(gist), tokenizer_(std::make_shared<ByteTokenizer>(), model, gist.levels) {
    for (int64_t l = 0; l < gist.levels; ++l) id_bound_ = std::min(id_bound_, tokenizer_.gist_id(l));
  }
  GistLayout make(int64_t n, uint32_t seed) const {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int64_t> id(0, id_bound_ - 1);
    Document doc;
    for (int64_t i = 0; i < n; ++i) doc.context.push_back(id(rng));
    for (int64_t i = 0; i < kSuffixTokens; ++i) doc.suffix.push_back(id(rng));
    return build_layout({doc}, gist_, tokenizer_);
  }

 private:
  GistOptions gist_;
  ModelTokenizer tokenizer_;
  int64_t id_bound_ = std::numeric_limits<int64_t>::max();
};

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

// The q-quantile (0..1) of `times`, nearest rank.
double quantile(std::vector<double> times, double q) {
  std::sort(times.begin(), times.end());
  const auto at = static_cast<size_t>(q * static_cast<double>(times.size() - 1) + 0.5);
  return times[std::min(at, times.size() - 1)];
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

int64_t greedy(const at::Tensor& logits) { return logits.argmax().item<int64_t>(); }  // waits for the device

struct Row {
  std::string table, budget;
  int64_t tokens = 0, concurrency = 1;
  double ttft_ms = 0, step_ms = 0, step_p90_ms = 0, tokens_per_s = 0, peak_gib = 0;
  double ahead_ms = 0;   // latency rows: a token of the greedy loop ahead of the host (Generator::decode_ahead)
  double ahead_gpu_ms = 0, ahead_idle_ms = 0;  // its steps' GPU time and the GPU's idle time before each (CUDA)
  double device_ms = 0;  // latency rows: the step's device time (0: not measured)
};

class Report {
 public:
  explicit Report(const std::string& csv_path) {
    if (csv_path.empty()) return;
    csv_.open(csv_path);
    GSA_CHECK(csv_.good(), "gsa bench serve: cannot write --csv ", csv_path);
    csv_ << "table,budget,tokens,concurrency,ttft_ms,step_ms,step_p90_ms,tokens_per_s,peak_gib,ahead_ms,"
            "ahead_gpu_ms,ahead_idle_ms,device_ms\n";
  }
  void add(const Row& r) {
    std::printf("%-10s %-9s %9lld %5lld %11.1f %9.3f %9.3f %10.1f %8.1f %9.3f %9.3f %9.3f %9.3f\n",
                r.table.c_str(), r.budget.c_str(), (long long)r.tokens, (long long)r.concurrency, r.ttft_ms, r.step_ms,
                r.step_p90_ms, r.tokens_per_s, r.peak_gib, r.ahead_ms, r.ahead_gpu_ms, r.ahead_idle_ms, r.device_ms);
    std::fflush(stdout);
    if (csv_.is_open()) {
      csv_ << r.table << ',' << r.budget << ',' << r.tokens << ',' << r.concurrency << ',' << r.ttft_ms << ','
           << r.step_ms << ',' << r.step_p90_ms << ',' << r.tokens_per_s << ',' << r.peak_gib << ',' << r.ahead_ms
           << ',' << r.ahead_gpu_ms << ',' << r.ahead_idle_ms << ',' << r.device_ms << '\n';
      csv_.flush();
    }
  }

 private:
  std::ofstream csv_;
};

struct Budget {
  std::string name;
  AttentionOptions attention;
};

double peak_gib(const at::Device& device) {
  return static_cast<double>(MemoryTracker::peak_bytes(device)) / static_cast<double>(int64_t{1} << 30);
}

constexpr int64_t kProfiledSteps = 8;  // decode steps under the op profiler after a row's timed ones

// Runs `steps` (kProfiledSteps decode steps) under the op profiler (op_profile.h) and prints its table (not part
// of the row's times).
void print_profile(const std::function<void()>& steps, const at::Device& device, const std::string& what) {
  const OpProfile p = profile_ops(steps, device.is_cuda(), "");
  std::printf("profile of %lld decode steps, %s:\n%s", (long long)kProfiledSteps, what.c_str(),
              p.table(/*top=*/25).c_str());
}

// The device time of one decode step: `steps` steps enqueued without waiting for the host between them (each
// fed `token` again, so none needs the previous one's logits), timed from the first enqueue to the last result
// on the host. Measured again if the cache grew (a new capture's eager warm-up step) inside the run.
double back_to_back_step_ms(Generator& generator, int64_t token, int64_t steps) {
  (void)greedy(generator.step(token));  // the plain step's graph captured before the clock starts
  for (int attempt = 0;; ++attempt) {
    const int64_t captures = generator.graph_captures();
    const auto start = std::chrono::steady_clock::now();
    at::Tensor logits;
    for (int64_t s = 0; s < steps; ++s) logits = generator.step(token);
    (void)greedy(logits);
    const double ms = ms_since(start) / static_cast<double>(steps);
    if (generator.graph_captures() == captures || attempt == 1) return ms;
  }
}

// One request: Generator::generate with decode_ahead (greedy, ahead of the host where the step replays a CUDA
// graph): the time to first token and ahead_ms, the gap between two tokens reaching on_token; then, on the same
// generator, the plain loop `gsa generate` runs (step, Sampler's greedy choice, the token to the host, next step:
// step_ms) and the back-to-back device time; with profile, kProfiledSteps plain steps under the op profiler.
Row measure_latency(const LlamaModel& model, const Budget& budget, const PromptMaker& prompts, int64_t n,
                    int64_t steps, int64_t settle_ms = 0, bool profile = false) {
  using Clock = std::chrono::steady_clock;
  const at::Device device = model.device();
  MemoryTracker::reset_peak(device);
  GistLayout prompt = prompts.make(n, static_cast<uint32_t>(n));
  // Room for the generated tokens (and the steps generate() queues past them), the plain loop's, the back-to-back
  // ones (each run twice at most) and the profiled ones.
  const int64_t positions = prompt.size() + 5 * (steps + 2) + kDecodeAhead + (profile ? kProfiledSteps : 0);
  Generator generator(model, budget.attention, std::move(prompt), positions);
  generator.set_decode_ahead(true);
  SamplingOptions sampling;
  sampling.max_new_tokens = steps + 3;  // the first token, two warm-up steps (eager, capture), `steps` timed
  std::vector<Clock::time_point> arrivals;
  const auto start = Clock::now();
  GenerationStats stats;
  const std::vector<int64_t> out =
      generator.generate(sampling, &stats, [&](int64_t) {
        arrivals.push_back(Clock::now());
        if (arrivals.size() == 1) std::this_thread::sleep_for(std::chrono::milliseconds(settle_ms));
      });
  GSA_CHECK(static_cast<int64_t>(out.size()) == sampling.max_new_tokens, "gsa bench serve: generate stopped after ",
            out.size(), " of ", sampling.max_new_tokens, " tokens");
  Row row{"latency", budget.name, n, 1};
  row.ttft_ms = std::chrono::duration<double, std::milli>(arrivals[0] - start).count();
  std::vector<double> gaps;
  for (size_t i = 3; i < arrivals.size(); ++i) {
    gaps.push_back(std::chrono::duration<double, std::milli>(arrivals[i] - arrivals[i - 1]).count());
  }
  row.ahead_ms = quantile(gaps, 0.5);
  if (stats.step_gpu_ms.size() > 2) {  // after the two warm-up steps, as the gaps
    row.ahead_gpu_ms = quantile({stats.step_gpu_ms.begin() + 2, stats.step_gpu_ms.end()}, 0.5);
    row.ahead_idle_ms = quantile({stats.step_idle_ms.begin() + 1, stats.step_idle_ms.end()}, 0.5);
  }
  Sampler sampler(sampling, generator.layout().gist_token_ids);
  int64_t token = out.back();
  std::vector<double> times;
  for (int64_t s = 0; s < steps + 2; ++s) {
    const auto t = Clock::now();
    token = sampler.sample(generator.step(token));
    if (s >= 2) times.push_back(ms_since(t));
  }
  row.step_ms = quantile(times, 0.5);
  row.step_p90_ms = quantile(times, 0.9);
  row.tokens_per_s = 1e3 / row.step_ms;
  row.device_ms = back_to_back_step_ms(generator, token, steps);
  row.peak_gib = peak_gib(device);
  if (profile) {
    print_profile(
        [&] {
          for (int64_t s = 0; s < kProfiledSteps; ++s) token = greedy(generator.step(token));
        },
        device, str_cat(budget.name, " budget, ", n, " tokens"));
  }
  return row;
}

// `concurrency` requests prefilled one by one, then decoded together; with profile, kProfiledSteps more batched
// steps under the op profiler.
Row measure_throughput(const LlamaModel& model, const Budget& budget, const PromptMaker& prompts, int64_t n,
                       int64_t concurrency, int64_t steps, bool profile = false) {
  const at::Device device = model.device();
  MemoryTracker::reset_peak(device);
  std::vector<std::unique_ptr<Generator>> owned;
  std::vector<Generator*> batch;
  std::vector<int64_t> tokens;
  double prefill_ms = 0;
  for (int64_t r = 0; r < concurrency; ++r) {
    GistLayout prompt = prompts.make(n, static_cast<uint32_t>(n + 7919 * (r + 1)));
    const int64_t positions = prompt.size() + steps + 3 + (profile ? kProfiledSteps : 0);
    owned.push_back(std::make_unique<Generator>(model, budget.attention, std::move(prompt), positions));
    batch.push_back(owned.back().get());
    const auto start = std::chrono::steady_clock::now();
    tokens.push_back(greedy(owned.back()->prefill()));
    prefill_ms += ms_since(start);
  }
  DecodeBatch decode;  // as LocalBackend steps a batch
  auto step = [&] {
    const std::vector<at::Tensor> logits = decode.step(batch, tokens);
    const at::Tensor next = at::stack(logits).argmax(-1).to(at::kCPU);  // [C]
    for (int64_t r = 0; r < concurrency; ++r) tokens[r] = next[r].item<int64_t>();
  };
  std::vector<double> times;
  for (int64_t s = 0; s < steps + 2; ++s) {
    const auto t = std::chrono::steady_clock::now();
    step();
    if (s >= 2) times.push_back(ms_since(t));
  }
  Row row{"throughput", budget.name, n, concurrency};
  row.ttft_ms = prefill_ms / static_cast<double>(concurrency);
  row.step_ms = quantile(times, 0.5);
  row.step_p90_ms = quantile(times, 0.9);
  row.tokens_per_s = static_cast<double>(concurrency) * 1e3 / row.step_ms;
  row.peak_gib = peak_gib(device);
  if (profile) {
    print_profile(
        [&] {
          for (int64_t s = 0; s < kProfiledSteps; ++s) step();
        },
        device, str_cat(budget.name, " budget, ", concurrency, " requests of ", n, " tokens"));
  }
  return row;
}

}  // namespace

int run_bench_serve(const Args& args) {
  Flags flags(args, "bench serve");
  if (flags.help()) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  const std::string config = flags.get_string("config", "configs/llama-1b-gsa.pbtxt");
  const std::vector<std::string> overrides = flags.get_all("set");
  const std::vector<int64_t> lengths = flags.get_int_list("tokens", {32768, 131072, 524288, 1048576});
  const int64_t fixed_k = flags.get_int("fixed-k", 16);
  const int64_t steps = flags.get_int("decode-steps", 32);
  const int64_t settle_ms = flags.get_int("settle-ms", 0);
  const std::vector<int64_t> concurrency = flags.get_int_list("concurrency", {1, 4, 16, 64});
  const int64_t concurrent_tokens = flags.get_int("concurrent-tokens", 32768);
  const at::Device device = device_from_flags(flags);
  const std::string csv = flags.get_string("csv", "");
  const bool profile = flags.get_bool("profile", false);
  flags.finish();
  GSA_CHECK(fixed_k >= 0, "gsa bench serve: --fixed-k must be >= 0, got ", fixed_k);
  GSA_CHECK(steps >= 1, "gsa bench serve: --decode-steps must be >= 1, got ", steps);
  GSA_CHECK(settle_ms >= 0, "gsa bench serve: --settle-ms must be >= 0, got ", settle_ms);
  GSA_CHECK(concurrent_tokens >= 1, "gsa bench serve: --concurrent-tokens must be >= 1");
  for (int64_t n : lengths) GSA_CHECK(n >= 1, "gsa bench serve: --tokens must be >= 1, got ", n);
  for (int64_t c : concurrency) GSA_CHECK(c >= 1, "gsa bench serve: --concurrency must be >= 1, got ", c);

  const GsaOptions options = load_config_file(config, overrides);
  MemoryTracker::install();
  const LlamaModel model = LlamaModel::create(options.model, /*seed=*/1234, device);
  std::vector<Budget> budgets{{options.attention.selection.enabled
                                   ? (options.attention.selection.budget == BudgetKind::kFixed ? "fixed" : "adaptive")
                                   : "gist-only",
                               options.attention}};
  if (fixed_k > 0 && options.attention.selection.enabled) {
    Budget fixed{"fixed-" + std::to_string(fixed_k), options.attention};
    fixed.attention.selection.budget = BudgetKind::kFixed;
    fixed.attention.selection.fixed_k = fixed_k;
    budgets.push_back(fixed);
  }
  std::printf(
      "gsa bench serve: %s on %s, %lld layers, hidden %lld, %lld/%lld heads, head dim %lld, vocab %lld, "
      "c0 %lld, levels %lld, random weights, greedy\n",
      config.c_str(), device.str().c_str(), (long long)options.model.num_layers, (long long)options.model.hidden_size,
      (long long)options.model.num_heads, (long long)options.model.num_kv_heads, (long long)options.model.head_dim,
      (long long)options.model.vocab_size, (long long)options.gist.chunk, (long long)options.gist.levels);
  std::printf("%-10s %-9s %9s %5s %11s %9s %9s %10s %8s %9s %9s %9s %9s\n", "table", "budget", "tokens", "conc",
              "ttft_ms", "step_ms", "p90_ms", "tokens/s", "peak_GiB", "ahead_ms", "gpu_ms", "idle_ms", "device_ms");
  const PromptMaker prompts(options.model, options.gist);
  Report report(csv);
  // Warm-up (library handles, kernel caches, the allocator's first blocks) so the first row's time to first
  // token is not a start-up time.
  for (const Budget& budget : budgets) (void)measure_latency(model, budget, prompts, 4096, 2);
  bool all_fit = true;
  // A point that runs out of device memory is reported as such and the sweep goes on.
  auto run_point = [&](const char* table, const Budget& budget, int64_t n, int64_t c, const std::function<Row()>& fn) {
    MemoryTracker::release_cached(device);
    try {
      report.add(fn());
    } catch (const c10::OutOfMemoryError& e) {
      all_fit = false;
      std::printf("%-10s %-9s %9lld %5lld   out of device memory: %s\n", table, budget.name.c_str(), (long long)n,
                  (long long)c, first_line(e.what()).c_str());
    }
  };
  for (int64_t n : lengths) {
    for (const Budget& budget : budgets) {
      run_point("latency", budget, n, 1,
                [&] { return measure_latency(model, budget, prompts, n, steps, settle_ms, profile); });
    }
  }
  for (int64_t c : concurrency) {
    for (const Budget& budget : budgets) {
      run_point("throughput", budget, concurrent_tokens, c,
                [&] { return measure_throughput(model, budget, prompts, concurrent_tokens, c, steps, profile); });
    }
  }
  return all_fit ? 0 : 1;
}

}  // namespace gsa::cli
