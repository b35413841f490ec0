// gsa bench attention: time and peak memory of the efficient GSA attention path (make_attention_plan +
// gsa_attention) against dense masked attention (a [T, T] mask from the tensor predicate, then float32
// softmax(q k^T + mask) v with the KV heads repeated), at growing sequence lengths.
//
// Per length N: one document whose context is N-16 raw tokens (gisted) followed by a 16-token raw suffix;
// T is the resulting layout size. Both paths include building their plan / mask in the measured call (what a
// caller pays per forward). Columns: efficient = cpt-style (no selection), dense = the same mask densely,
// selective = the efficient path with selective=true (suffix queries select chunks; its mask differs);
// plan = make_attention_plan alone (host-side, included in the efficient and selective times).
// Time: median of --repeats calls after one warm-up. Memory: gsa::MemoryTracker peak minus the bytes live
// before the call, i.e. the extra memory the call needed (the output and, with --backward, the gradients
// included); the largest over the timed calls.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "cli_flags.h"
#include "commands.h"
#include "gist_flags.h"
#include "gsa/config/options.h"
#include "gsa/runtime/attention.h"
#include "gsa/runtime/attention_plan.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/gist_layout.h"
#include "gsa/runtime/mask_predicate.h"
#include "gsa/runtime/memory_tracker.h"

namespace gsa::cli {
namespace {

const char* const kBenchHelp =
    "usage: gsa bench attention [flags]\n"
    "\n"
    "Time and peak memory of the efficient GSA attention against dense masked attention.\n"
    "\n"
    "flags:\n"
    "  --tokens 2048,4096,8192,16384   sequence lengths N (context N-16 gisted + 16 raw suffix tokens)\n"
    "  --heads 4 --kv-heads 1 --head-dim 64\n"
    "  --chunk 8 --fanout 4 --levels 1 --sink 3 --prev-chunks 1\n"
    "  --backward               also time forward+backward\n"
    "  --device cpu|cuda        (default cpu)\n"
    "  --repeats 3              timed calls per measurement (median), after one warm-up\n"
    "  --dense-max-tokens 16384 skip the dense baseline above this N\n"
    "  --dense-max-gib 12       skip the dense baseline when its estimated memory exceeds this\n"
    "  --threads N              at::set_num_threads(N) (default: LibTorch's choice)\n"
    "  --csv FILE               also write one row per (pass, N, path) to FILE\n";

constexpr int64_t kSuffixTokens = 16;
constexpr double kMiB = 1024.0 * 1024.0;
constexpr double kGiB = kMiB * 1024.0;

struct Setup {
  int64_t heads = 4, kv_heads = 1, head_dim = 64, repeats = 3;
  GistOptions gist;
  at::Device device = at::kCPU;
};

struct Result {
  bool ran = false;
  double ms = 0, mib = 0;
  std::string note;  // why it did not run
};

struct Row {
  int64_t tokens = 0, size = 0;
  Result plan, efficient, dense, selective;
};

int64_t at_least(Flags& flags, const std::string& name, int64_t value, int64_t lo) {
  GSA_CHECK(value >= lo, "gsa ", flags.command_name(), ": --", name, " must be >= ", lo, ", got ", value);
  return value;
}

void sync(const at::Tensor& t) {
  if (t.device().is_cuda()) (void)t.reshape(-1)[0].item<float>();
}

// Runs fn once to warm up, then `repeats` timed calls; fn returns a tensor to synchronise on.
Result measure(const std::function<at::Tensor()>& fn, const std::function<void()>& reset, const Setup& s) {
  reset();
  sync(fn());
  std::vector<double> times;
  int64_t extra = 0;
  for (int64_t r = 0; r < s.repeats; ++r) {
    reset();
    MemoryTracker::reset_peak(s.device);
    const int64_t before = MemoryTracker::current_bytes(s.device);
    const auto start = std::chrono::steady_clock::now();
    {
      at::Tensor out = fn();
      sync(out);
    }
    const auto stop = std::chrono::steady_clock::now();
    extra = std::max(extra, MemoryTracker::peak_bytes(s.device) - before);
    times.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
  }
  std::sort(times.begin(), times.end());
  Result result;
  result.ran = true;
  result.ms = times[times.size() / 2];
  result.mib = static_cast<double>(extra) / kMiB;
  return result;
}

// Dense [T, T] "not allowed" mask from the tensor predicate, built in row blocks to bound the temporaries.
at::Tensor dense_blocked_mask(const GistLayout& layout, const at::Device& device) {
  const int64_t T = layout.size();
  const TokenMeta meta = make_token_meta({&layout}, T, device);  // [1, T, F]
  const TokenMeta keys{meta.fields.unsqueeze(1)};                  // [1, 1, T, F]
  at::Tensor blocked = at::empty({T, T}, at::TensorOptions().dtype(at::kBool).device(device));
  constexpr int64_t kRows = 512;
  for (int64_t r0 = 0; r0 < T; r0 += kRows) {
    const int64_t n = std::min(kRows, T - r0);
    const TokenMeta queries{meta.fields.narrow(1, r0, n).unsqueeze(2)};  // [1, n, 1, F]
    at::Tensor allowed = gist_mask_allowed(queries, keys, layout.levels(), layout.options.prev_chunks)[0];
    blocked.narrow(0, r0, n).copy_(allowed.logical_not());  // [n, T]
  }
  return blocked;
}

// What a user would write without the decomposition: full masked softmax attention, GQA by repeating KV.
at::Tensor dense_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const GistLayout& layout,
                           double scale) {
  const at::Tensor blocked = dense_blocked_mask(layout, q.device());  // [T, T]
  const int64_t group = q.size(1) / k.size(1);
  const at::Tensor kr = k.repeat_interleave(group, 1);  // [1, Hq, T, D]
  const at::Tensor vr = v.repeat_interleave(group, 1);
  at::Tensor scores = at::matmul(q * scale, kr.transpose(-2, -1));  // [1, Hq, T, T]
  scores.masked_fill_(blocked, -std::numeric_limits<float>::infinity());
  const at::Tensor probs = at::softmax(scores, -1);
  scores = at::Tensor();
  return at::matmul(probs, vr);  // [1, Hq, T, D]
}

// Bytes of the dense path's [T, T] tensors at its peak: the bool mask plus 2 (forward: scores + probs) or 3
// (backward: probs + their gradient + the scores' gradient) float32 [Hq, T, T] tensors.
double dense_estimate_bytes(int64_t T, int64_t heads, bool backward) {
  const double t2 = static_cast<double>(T) * static_cast<double>(T);
  return t2 * (1.0 + (backward ? 3.0 : 2.0) * 4.0 * static_cast<double>(heads));
}

Row bench_one(int64_t tokens, const Setup& s, bool backward, int64_t dense_max_tokens, double dense_max_gib) {
  GSA_CHECK(tokens > kSuffixTokens + s.gist.sink, "gsa bench attention: --tokens ", tokens,
            " leaves no context to gist (need > ", kSuffixTokens + s.gist.sink, ")");
  Document doc;
  for (int64_t i = 0; i < tokens - kSuffixTokens; ++i) doc.context.push_back('a' + i % 26);
  for (int64_t i = 0; i < kSuffixTokens; ++i) doc.suffix.push_back('A' + i % 26);
  const GistLayout layout = build_layout({doc}, s.gist);
  const int64_t T = layout.size();

  at::manual_seed(1234);
  const auto f32 = at::TensorOptions().dtype(at::kFloat).device(s.device);
  at::Tensor q = at::randn({1, s.heads, T, s.head_dim}, f32);     // [1, Hq, T, D]
  at::Tensor k = at::randn({1, s.kv_heads, T, s.head_dim}, f32);  // [1, Hkv, T, D]
  at::Tensor v = at::randn({1, s.kv_heads, T, s.head_dim}, f32);
  at::Tensor grad_out;
  if (backward) {
    q.requires_grad_(true);
    k.requires_grad_(true);
    v.requires_grad_(true);
    grad_out = at::randn({1, s.heads, T, s.head_dim}, f32);
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim));
  const AttentionOptions options;
  auto reset = [&] {
    for (at::Tensor* t : {&q, &k, &v}) {
      if (t->requires_grad()) t->mutable_grad() = at::Tensor();
    }
  };
  // Wraps a forward into the measured call: forward only, or forward + backward (sync on q's gradient).
  auto pass = [&](std::function<at::Tensor()> forward) -> std::function<at::Tensor()> {
    if (!backward) return forward;
    return [&, forward] {
      forward().backward(grad_out);
      return q.grad();
    };
  };
  auto efficient = [&](bool selective) {
    return [&, selective] {
      const AttentionPlan plan = make_attention_plan({&layout}, 0, -1, options, s.device);
      return gsa_attention(q, k, v, plan, selective, options.selection, scale);
    };
  };

  Row row;
  row.tokens = tokens;
  row.size = T;
  auto plan_only = [&] { return make_attention_plan({&layout}, 0, -1, options, s.device).meta.fields; };
  row.plan = measure(plan_only, reset, s);
  row.efficient = measure(pass(efficient(false)), reset, s);
  row.selective = measure(pass(efficient(true)), reset, s);
  const double estimate = dense_estimate_bytes(T, s.heads, backward) / kGiB;
  if (tokens > dense_max_tokens) {
    row.dense.note = str_cat("skipped (N > --dense-max-tokens ", dense_max_tokens, ")");
  } else if (estimate > dense_max_gib) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "skipped (est. %.1f GiB)", estimate);
    row.dense.note = buf;
  } else {
    try {
      row.dense = measure(pass([&] { return dense_attention(q, k, v, layout, scale); }), reset, s);
    } catch (const std::exception& e) {
      row.dense.note = str_cat("failed: ", std::string(e.what()).substr(0, 120));
    }
  }
  return row;
}

std::string cell(const Result& r, double value, const char* format) {
  if (!r.ran) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), format, value);
  return buf;
}

std::string ratio(const Result& num, const Result& den, double a, double b) {
  if (!num.ran || !den.ran || b <= 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2fx", a / b);
  return buf;
}

// log(v2/v1)/log(T2/T1) between the first and last rows where the path ran.
void print_growth(const std::vector<Row>& rows, const char* name, Result Row::*path) {
  const Row* first = nullptr;
  const Row* last = nullptr;
  for (const Row& r : rows) {
    if (!(r.*path).ran) continue;
    if (first == nullptr) first = &r;
    last = &r;
  }
  if (first == nullptr || first->size == last->size) {
    std::printf("  %-10s  (needs two measured lengths)\n", name);
    return;
  }
  const double dt = std::log(static_cast<double>(last->size) / static_cast<double>(first->size));
  const Result& a = first->*path;
  const Result& b = last->*path;
  auto exponent = [&](double x, double y) { return x > 0 && y > 0 ? std::log(y / x) / dt : NAN; };
  std::printf("  %-10s  time ~ T^%.2f   memory ~ T^%.2f   (T %lld .. %lld)\n", name, exponent(a.ms, b.ms),
              exponent(a.mib, b.mib), static_cast<long long>(first->size), static_cast<long long>(last->size));
}

void print_table(const std::vector<Row>& rows, const char* title) {
  std::printf("\n%s\n", title);
  std::printf("%7s %7s %8s %10s %10s %8s %10s %9s %10s %9s %9s\n", "N", "T", "plan ms", "eff ms", "dense ms",
              "speedup", "select ms", "eff MiB", "dense MiB", "mem ratio", "sel MiB");
  for (const Row& r : rows) {
    std::printf("%7lld %7lld %8s %10s %10s %8s %10s %9s %10s %9s %9s%s%s\n", static_cast<long long>(r.tokens),
                static_cast<long long>(r.size), cell(r.plan, r.plan.ms, "%.1f").c_str(),
                cell(r.efficient, r.efficient.ms, "%.1f").c_str(),
                cell(r.dense, r.dense.ms, "%.1f").c_str(),
                ratio(r.dense, r.efficient, r.dense.ms, r.efficient.ms).c_str(),
                cell(r.selective, r.selective.ms, "%.1f").c_str(), cell(r.efficient, r.efficient.mib, "%.1f").c_str(),
                cell(r.dense, r.dense.mib, "%.1f").c_str(),
                ratio(r.dense, r.efficient, r.dense.mib, r.efficient.mib).c_str(),
                cell(r.selective, r.selective.mib, "%.1f").c_str(), r.dense.note.empty() ? "" : "   dense: ",
                r.dense.note.c_str());
  }
  std::printf("growth between the first and last measured T:\n");
  print_growth(rows, "efficient", &Row::efficient);
  print_growth(rows, "dense", &Row::dense);
  print_growth(rows, "selective", &Row::selective);
}

void write_csv(std::ofstream& csv, const std::vector<Row>& rows, const char* pass) {
  for (const Row& r : rows) {
    const std::pair<const char*, const Result*> paths[] = {
        {"plan", &r.plan}, {"efficient", &r.efficient}, {"dense", &r.dense}, {"selective", &r.selective}};
    for (const auto& [name, res] : paths) {
      csv << pass << ',' << r.tokens << ',' << r.size << ',' << name << ',';
      if (res->ran) {
        csv << res->ms << ',' << res->mib << ",\n";
      } else {
        csv << ",," << res->note << '\n';
      }
    }
  }
}

}  // namespace

int run_bench(const Args& args) {
  const std::string what = Flags::leading_word(args);
  if (what == "comm") return run_bench_comm(Args(args.begin() + 1, args.end()));
  if (what == "sp") return run_bench_sp(Args(args.begin() + 1, args.end()));
  if (what == "kernels") return run_bench_kernels(Args(args.begin() + 1, args.end()));
  if (what == "decode") return run_bench_decode(Args(args.begin() + 1, args.end()));
  if (what == "serve") return run_bench_serve(Args(args.begin() + 1, args.end()));
  if (what == "train") return run_bench_train(Args(args.begin() + 1, args.end()));
  if (what == "step") return run_bench_step(Args(args.begin() + 1, args.end()));
  Flags flags(args, what.empty() ? "bench" : "bench " + what);
  if (flags.help()) {
    std::fputs(kBenchHelp, stdout);
    return 0;
  }
  GSA_CHECK(flags.positional().size() == 1 && what == "attention",
            "expected 'gsa bench attention', 'comm', 'sp', 'kernels', 'decode', 'serve', 'train' or 'step' (positional "
            "words before flags)\n",
            kBenchHelp);

  std::vector<int64_t> tokens = flags.get_int_list("tokens", {2048, 4096, 8192, 16384});
  Setup s;
  s.heads = at_least(flags, "heads", flags.get_int("heads", 4), 1);
  s.kv_heads = at_least(flags, "kv-heads", flags.get_int("kv-heads", 1), 1);
  GSA_CHECK(s.heads % s.kv_heads == 0, "gsa bench attention: --kv-heads ", s.kv_heads, " must divide --heads ",
            s.heads);
  s.head_dim = at_least(flags, "head-dim", flags.get_int("head-dim", 64), 1);
  s.gist = read_gist_flags(flags, /*chunk=*/8, /*levels=*/1);
  const bool backward = flags.get_bool("backward", false);
  const std::string device = flags.get_string("device", "cpu");
  s.repeats = at_least(flags, "repeats", flags.get_int("repeats", 3), 1);
  const int64_t dense_max_tokens = flags.get_int("dense-max-tokens", 16384);
  const double dense_max_gib = flags.get_double("dense-max-gib", 12.0);
  const std::string csv_path = flags.get_string("csv", "");
  const int64_t threads = flags.has("threads") ? at_least(flags, "threads", flags.get_int("threads", 0), 1) : 0;
  flags.finish();

  GSA_CHECK(device == "cpu" || device == "cuda", "gsa bench attention: --device must be cpu or cuda, got '",
            device, "'");
  GSA_CHECK(device == "cpu" || at::hasCUDA(), "gsa bench attention: --device cuda but LibTorch sees no CUDA device");
  s.device = device == "cuda" ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  for (int64_t n : tokens) at_least(flags, "tokens", n, kSuffixTokens + s.gist.sink + 1);
  if (threads > 0) at::set_num_threads(static_cast<int>(threads));
  MemoryTracker::install();

  std::printf("gsa bench attention: device %s, threads %d, heads %lld (kv %lld), head_dim %lld, chunk %lld, "
              "fanout %lld, levels %lld, sink %lld, prev_chunks %lld, repeats %lld (median after 1 warm-up)\n",
              device.c_str(), at::get_num_threads(), static_cast<long long>(s.heads),
              static_cast<long long>(s.kv_heads), static_cast<long long>(s.head_dim),
              static_cast<long long>(s.gist.chunk), static_cast<long long>(s.gist.fanout),
              static_cast<long long>(s.gist.levels), static_cast<long long>(s.gist.sink),
              static_cast<long long>(s.gist.prev_chunks), static_cast<long long>(s.repeats));
  std::printf("N tokens = %lld-token suffix + gisted context; T = layout size (gists included); "
              "MiB = peak extra memory of the call\n",
              static_cast<long long>(kSuffixTokens));
  std::fflush(stdout);

  std::ofstream csv;
  if (!csv_path.empty()) {
    csv.open(csv_path);
    GSA_CHECK(csv.good(), "gsa bench attention: --csv cannot write '", csv_path, "'");
    csv << "pass,tokens,T,path,ms,peak_mib,note\n";
  }
  for (bool bwd : backward ? std::vector<bool>{false, true} : std::vector<bool>{false}) {
    std::vector<Row> rows;
    for (int64_t n : tokens) {
      rows.push_back(bench_one(n, s, bwd, dense_max_tokens, dense_max_gib));
      std::fprintf(stderr, "  measured N %lld (%s)\n", static_cast<long long>(n), bwd ? "fwd+bwd" : "fwd");
    }
    print_table(rows, bwd ? "forward + backward" : "forward");
    std::fflush(stdout);
    if (csv.is_open()) write_csv(csv, rows, bwd ? "fwd+bwd" : "fwd");
  }
  return 0;
}

}  // namespace gsa::cli
