// gsa bench train: training steps of a Llama-shaped model with random weights (default: the Llama-3.2-1B shapes)
// at long sequence lengths, GSA selective training against dense causal attention (SDPA) in the same process,
// same model otherwise (trainer/train_bench.h holds the method: the step, the attention timing, the FLOP
// formula). Per length and mode it prints step time, tokens/s, the step breakdown (attention forward+backward,
// communication, the rest), peak memory, model FLOPs and MFU against --peak-tflops, the first step's loss, and
// the GSA/dense speedup; --out DIR also writes train_bench.csv and train_bench.json. docs/PERFORMANCE.md
// ("Training on one H200") holds the measured numbers; scripts/gpu_train_bench.sh runs it on the H200.
#include <ATen/ATen.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "cli_flags.h"
#include "commands.h"
#include "device_flag.h"
#include "gist_flags.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/file_util.h"
#include "gsa/runtime/json_reader.h"
#include "gsa/trainer/train_bench.h"

namespace gsa::cli {
namespace {

const char* const kHelp =
    "usage: gsa bench train [flags]\n"
    "\n"
    "Time training steps of one model with GSA selective attention and with dense causal attention (SDPA).\n"
    "\n"
    "flags:\n"
    "  --tokens 32768,65536,131072   raw tokens per sequence (gisted context + raw suffix)\n"
    "  --modes gsa,dense             attention modes, run in this order at every length\n"
    "  --layers 16 --hidden 2048 --intermediate 8192 --heads 32 --kv-heads 8 --head-dim 64 --vocab 128256\n"
    "                                the model (default: the Llama-3.2-1B shapes, tied embeddings)\n"
    "  --dtype bf16|fp32             parameters and activations (default bf16)\n"
    "  --master-weights fp32|bf16    the optimizer's weights (default fp32: fp32 masters of bf16 parameters)\n"
    "  --no-checkpointing            keep every layer's activations (default: recompute each layer in backward)\n"
    "  --chunk 8 --fanout 4 --levels 1 --sink 3 --prev-chunks 1   the gist layout (configs/llama-1b-gsa.pbtxt)\n"
    "  --first-selective-layer 1 --budget adaptive|fixed --fixed-k 4   chunk selection of the suffix queries\n"
    "  --backend auto|reference|kernels   GSA attention implementation (default auto: the kernels on CUDA)\n"
    "  --suffix 256                  raw suffix tokens per sequence (GSA's selective queries)\n"
    "  --batch 1 --warmup 1 --steps 2 --loss-chunk 4096 --lr 1e-4 --seed 1234\n"
    "  --peak-tflops 989             dense bf16 peak for MFU (H200 SXM: 989)\n"
    "  --device cpu|cuda[:N]         (default cpu)   --threads N\n"
    "  --out DIR                     also write DIR/train_bench.csv and DIR/train_bench.json\n"
    "  --profile                     after each run's timed steps, profile one more step: device time per scope\n"
    "                                (gsa:: parts, autograd backward nodes), per kernel and per CPU operator; with\n"
    "                                --out also DIR/profile_<tokens>_<mode>.{txt,json} (the .json a Chrome trace)\n"
    "\n"
    "A run that fails (out of memory, an unsupported shape) is reported and the others go on; the exit code is then 1.\n";

AttentionBackend parse_backend(const std::string& name) {
  if (name == "auto") return AttentionBackend::kAuto;
  if (name == "reference") return AttentionBackend::kReference;
  if (name == "kernels") return AttentionBackend::kKernels;
  throw Error(str_cat("gsa bench train: --backend must be auto, reference or kernels, got '", name, "'"));
}

DType parse_dtype(const std::string& flag, const std::string& name) {
  if (name == "bf16") return DType::kBFloat16;
  if (name == "fp32") return DType::kFloat32;
  throw Error(str_cat("gsa bench train: --", flag, " must be bf16 or fp32, got '", name, "'"));
}

std::vector<BenchAttention> parse_modes(const std::string& list) {
  std::vector<BenchAttention> modes;
  std::istringstream in(list);
  std::string name;
  while (std::getline(in, name, ',')) {
    BenchAttention mode;
    if (name == "gsa") {
      mode = BenchAttention::kGsa;
    } else if (name == "dense") {
      mode = BenchAttention::kDense;
    } else {
      throw Error(str_cat("gsa bench train: --modes: '", name, "' is not gsa or dense"));
    }
    for (BenchAttention m : modes) GSA_CHECK(m != mode, "gsa bench train: --modes names '", name, "' twice");
    modes.push_back(mode);
  }
  GSA_CHECK(!modes.empty(), "gsa bench train: --modes is empty");
  return modes;
}

// A JSON number, or null for a value that is not measured (NaN) or not finite.
std::string number(double v) {
  if (!std::isfinite(v)) return "null";
  char text[40];
  std::snprintf(text, sizeof(text), "%.17g", v);
  return text;
}

// A (length, mode) run that threw (out of memory, an unsupported shape): reported, the other runs go on.
struct Failure {
  int64_t seq_tokens = 0;
  BenchAttention mode = BenchAttention::kGsa;
  std::string error;
};

struct Row {
  TrainBenchResult result;
  double mfu = NAN;      // model_flops / step_seconds / peak; NaN on the CPU (no meaningful peak)
  double speedup = NAN;  // dense step time / GSA step time at this length (on both modes' rows)
  int64_t seq_tokens = 0;
};

std::string csv_of(const std::vector<Row>& rows) {
  std::ostringstream out;
  out << "tokens,mode,batch_tokens,positions,attention_pairs,step_s,tokens_per_s,attention_s,communication_s,other_s,"
         "peak_bytes,model_flops,attention_flops,mfu,first_loss,last_loss,speedup\n";
  for (const Row& row : rows) {
    const TrainBenchResult& r = row.result;
    out << row.seq_tokens << "," << bench_attention_name(r.mode) << "," << r.tokens << "," << r.positions << ","
        << r.attention_pairs << "," << number(r.step_seconds) << "," << number(r.tokens_per_second) << ","
        << number(r.attention_seconds) << "," << number(r.communication_seconds) << "," << number(r.other_seconds)
        << "," << (r.peak_bytes < 0 ? std::string("n/a") : std::to_string(r.peak_bytes)) << ","
        << number(r.model_flops) << "," << number(r.attention_flops) << ","
        << (std::isfinite(row.mfu) ? number(row.mfu) : "n/a") << "," << number(r.first_loss) << ","
        << number(r.last_loss) << "," << (std::isfinite(row.speedup) ? number(row.speedup) : "n/a") << "\n";
  }
  return out.str();
}

std::string json_of(const std::vector<Row>& rows, const std::vector<Failure>& failures, const GsaOptions& o, const std::string& device, int64_t params,
                    int64_t matmul_params, double peak_tflops, const TrainBenchShape& shape) {
  std::ostringstream out;
  const ModelOptions& m = o.model;
  out << "{\n  \"device\": \"" << device << "\",\n"
      << "  \"model\": {\"layers\": " << m.num_layers << ", \"hidden\": " << m.hidden_size
      << ", \"intermediate\": " << m.intermediate_size << ", \"heads\": " << m.num_heads
      << ", \"kv_heads\": " << m.num_kv_heads << ", \"head_dim\": " << m.head_dim << ", \"vocab\": " << m.vocab_size
      << ", \"dtype\": \"" << (m.dtype == DType::kBFloat16 ? "bf16" : "fp32") << "\", \"master_weights\": \""
      << (o.train.master_weights == DType::kFloat32 ? "fp32" : "bf16") << "\", \"activation_checkpointing\": "
      << (o.train.activation_checkpointing ? "true" : "false") << ", \"params\": " << params
      << ", \"matmul_params\": " << matmul_params << "},\n"
      << "  \"gist\": {\"chunk\": " << o.gist.chunk << ", \"fanout\": " << o.gist.fanout << ", \"levels\": "
      << o.gist.levels << ", \"sink\": " << o.gist.sink << ", \"prev_chunks\": " << o.gist.prev_chunks
      << ", \"first_selective_layer\": " << o.attention.selection.first_selective_layer << ", \"budget\": \""
      << (o.attention.selection.budget == BudgetKind::kFixed ? "fixed" : "adaptive") << "\"},\n"
      << "  \"batch\": " << shape.batch << ", \"suffix_tokens\": " << shape.suffix_tokens << ", \"warmup\": "
      << shape.warmup << ", \"steps\": " << shape.steps << ", \"loss_chunk\": " << shape.loss_chunk << ",\n"
      << "  \"peak_tflops\": " << number(peak_tflops) << ",\n"
      << "  \"flop_formula\": \"6 * matmul_params * positions + 12 * heads * head_dim * layers * attention_pairs\",\n"
      << "  \"rows\": [\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const TrainBenchResult& r = rows[i].result;
    out << "    {\"tokens\": " << rows[i].seq_tokens << ", \"mode\": \"" << bench_attention_name(r.mode)
        << "\", \"batch_tokens\": " << r.tokens << ", \"positions\": " << r.positions
        << ", \"attention_pairs\": " << r.attention_pairs << ", \"step_s\": " << number(r.step_seconds)
        << ", \"tokens_per_s\": " << number(r.tokens_per_second) << ", \"attention_s\": "
        << number(r.attention_seconds) << ", \"communication_s\": " << number(r.communication_seconds)
        << ", \"other_s\": " << number(r.other_seconds) << ", \"peak_bytes\": "
        << (r.peak_bytes < 0 ? std::string("null") : std::to_string(r.peak_bytes))
        << ", \"model_flops\": " << number(r.model_flops) << ", \"attention_flops\": " << number(r.attention_flops)
        << ", \"mfu\": " << number(rows[i].mfu) << ", \"first_loss\": " << number(r.first_loss)
        << ", \"last_loss\": " << number(r.last_loss) << ", \"speedup\": " << number(rows[i].speedup) << "}"
        << (i + 1 < rows.size() ? ",\n" : "\n");
  }
  out << "  ],\n  \"failures\": [";
  for (size_t i = 0; i < failures.size(); ++i) {
    out << (i ? ", " : "") << "{\"tokens\": " << failures[i].seq_tokens << ", \"mode\": \""
        << bench_attention_name(failures[i].mode) << "\", \"error\": " << json::quote_json(failures[i].error) << "}";
  }
  out << "]\n}\n";
  return out.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream file(path, std::ios::trunc);
  GSA_CHECK(file.good(), "gsa bench train: cannot write '", path, "'");
  file << text;
  file.close();
  GSA_CHECK(file.good(), "gsa bench train: writing '", path, "' failed");
}

}  // namespace

int run_bench_train(const Args& args) {
  Flags flags(args, "bench train");
  if (flags.help()) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  const at::Device device = device_from_flags(flags);
  const std::vector<int64_t> lengths = flags.get_int_list("tokens", {32768, 65536, 131072});
  const std::vector<BenchAttention> modes = parse_modes(flags.get_string("modes", "gsa,dense"));
  GsaOptions o;
  ModelOptions& m = o.model;
  m.num_layers = flags.get_int("layers", 16);
  m.hidden_size = flags.get_int("hidden", 2048);
  m.intermediate_size = flags.get_int("intermediate", 8192);
  m.num_heads = flags.get_int("heads", 32);
  m.num_kv_heads = flags.get_int("kv-heads", 8);
  m.head_dim = flags.get_int("head-dim", 64);
  m.vocab_size = flags.get_int("vocab", 128256);
  m.tie_embeddings = true;  // as Llama-3.2-1B
  m.rope_theta = 500000;
  m.dtype = parse_dtype("dtype", flags.get_string("dtype", "bf16"));
  o.gist = read_gist_flags(flags, /*chunk=*/8, /*levels=*/1);
  o.attention.backend = parse_backend(flags.get_string("backend", "auto"));
  SelectionOptions& sel = o.attention.selection;
  sel.first_selective_layer = flags.get_int("first-selective-layer", 1);
  const std::string budget = flags.get_string("budget", "adaptive");
  GSA_CHECK(budget == "adaptive" || budget == "fixed", "gsa bench train: --budget must be adaptive or fixed, got '",
            budget, "'");
  sel.budget = budget == "fixed" ? BudgetKind::kFixed : BudgetKind::kAdaptive;
  sel.fixed_k = flags.get_int("fixed-k", 4);
  TrainOptions& t = o.train;
  t.master_weights = parse_dtype("master-weights", flags.get_string("master-weights", "fp32"));
  t.activation_checkpointing = !flags.get_bool("no-checkpointing", false);
  t.lr = flags.get_double("lr", 1e-4);
  t.weight_decay = 0.1;
  t.beta1 = 0.9;
  t.beta2 = 0.95;
  t.grad_clip = 1.0;
  t.seed = flags.get_int("seed", 1234);
  TrainBenchShape shape;
  shape.suffix_tokens = flags.get_int("suffix", 256);
  shape.batch = flags.get_int("batch", 1);
  shape.warmup = flags.get_int("warmup", 1);
  shape.steps = flags.get_int("steps", 2);
  shape.loss_chunk = flags.get_int("loss-chunk", 4096);
  const double peak_tflops = flags.get_double("peak-tflops", 989.0);
  const std::string out_dir = flags.get_string("out", "");
  shape.profile = flags.get_bool("profile", false);
  flags.finish();

  GSA_CHECK(m.num_layers >= 1 && m.hidden_size >= 1 && m.intermediate_size >= 1 && m.num_heads >= 1 &&
                m.num_kv_heads >= 1 && m.num_heads % m.num_kv_heads == 0 && m.head_dim >= 2 && m.head_dim % 2 == 0,
            "gsa bench train: --layers, --hidden, --intermediate, --heads, --kv-heads must be >= 1, --kv-heads must "
            "divide --heads and --head-dim must be even");
  GSA_CHECK(sel.first_selective_layer >= 0 && sel.first_selective_layer < m.num_layers,
            "gsa bench train: --first-selective-layer ", sel.first_selective_layer, " must be in [0, ", m.num_layers,
            ")");
  GSA_CHECK(sel.fixed_k >= 1, "gsa bench train: --fixed-k must be >= 1");
  GSA_CHECK(t.master_weights == DType::kFloat32 || m.dtype == DType::kBFloat16,
            "gsa bench train: --master-weights bf16 is narrower than --dtype fp32");
  GSA_CHECK(peak_tflops > 0, "gsa bench train: --peak-tflops must be > 0");
  // The gist ids: the last ids of the vocabulary, one per level (random text ids lie below them).
  GSA_CHECK(m.vocab_size >= 264 + o.gist.levels, "gsa bench train: --vocab ", m.vocab_size, " must be at least ",
            264 + o.gist.levels, " (the byte ids, then one gist id per level)");
  for (int64_t l = 0; l < o.gist.levels; ++l) m.gist_token_ids.push_back(m.vocab_size - o.gist.levels + l);
  for (int64_t n : lengths) {
    GSA_CHECK(n > shape.suffix_tokens + o.gist.sink, "gsa bench train: --tokens ", n,
              " must exceed --suffix plus --sink");
  }
  if (!out_dir.empty()) make_directories(out_dir);
  // The dense peer must be a fused kernel (FlashAttention, cuDNN, memory-efficient): SDPA's math fallback would
  // materialise T x T scores (128 GB at 32K) and run out of memory with a less clear message.
  if (device.is_cuda()) at::globalContext().setSDPUseMath(false);

  TrainBench bench(o, device);
  const int64_t params = bench.model().num_parameters(), matmul_params = bench.matmul_params();
  std::printf(
      "gsa bench train: device %s, %lld parameters (%lld in weight matrices), %lld layers, hidden %lld, heads %lld "
      "/ %lld, head dim %lld, vocab %lld, %s with %s master weights, activation checkpointing %s; gist chunk %lld, "
      "levels %lld, first selective layer %lld, %s budget; batch %lld, suffix %lld, %lld warm-up + %lld timed "
      "steps\n",
      device.str().c_str(), (long long)params, (long long)matmul_params, (long long)m.num_layers,
      (long long)m.hidden_size, (long long)m.num_heads, (long long)m.num_kv_heads, (long long)m.head_dim,
      (long long)m.vocab_size, m.dtype == DType::kBFloat16 ? "bf16" : "fp32",
      t.master_weights == DType::kFloat32 ? "fp32" : "bf16", t.activation_checkpointing ? "on" : "off",
      (long long)o.gist.chunk, (long long)o.gist.levels, (long long)sel.first_selective_layer, budget.c_str(),
      (long long)shape.batch, (long long)shape.suffix_tokens, (long long)shape.warmup, (long long)shape.steps);
  std::printf("model FLOPs per step = 6 * %lld * positions + 12 * %lld * %lld * %lld * attention pairs; MFU against "
              "%.0f TFLOP/s\n",
              (long long)matmul_params, (long long)m.num_heads, (long long)m.head_dim, (long long)m.num_layers,
              peak_tflops);
  std::printf("%8s %-6s %9s %9s %10s %9s %9s %9s %6s %9s %9s %6s %9s %8s\n", "tokens", "mode", "positions", "step_s",
              "tokens/s", "attn_s", "comm_s", "other_s", "attn%", "peak_GiB", "TFLOP", "MFU", "loss0", "speedup");
  std::fflush(stdout);
  std::vector<Row> rows;
  std::vector<Failure> failures;
  for (int64_t n : lengths) {
    shape.tokens = n;
    const size_t first = rows.size();
    for (BenchAttention mode : modes) {
      Row row;
      row.seq_tokens = n;
      const std::string profile_base =
          join_path(out_dir, str_cat("profile_", n, "_", bench_attention_name(mode)));
      shape.profile_trace = shape.profile && !out_dir.empty() ? profile_base + ".json" : "";
      try {
        row.result = bench.run(mode, shape);
      } catch (const std::exception& e) {  // e.g. out of memory at the longest length: keep the other runs
        const auto* torch_error = dynamic_cast<const c10::Error*>(&e);
        failures.push_back({n, mode, torch_error ? torch_error->what_without_backtrace() : e.what()});
        std::printf("%8lld %-6s failed: %s\n", (long long)n, bench_attention_name(mode), failures.back().error.c_str());
        std::fflush(stdout);
        continue;
      }
      if (device.is_cuda()) row.mfu = row.result.model_flops / row.result.step_seconds / (peak_tflops * 1e12);
      if (row.result.profile) {
        const std::string table = row.result.profile->table(/*top=*/30);
        std::printf("profiled step, %lld tokens, %s:\n%s", (long long)n, bench_attention_name(mode), table.c_str());
        std::fflush(stdout);
        if (!out_dir.empty()) write_file(profile_base + ".txt", table);
      }
      rows.push_back(row);
    }
    const TrainBenchResult* gsa = nullptr;
    const TrainBenchResult* dense = nullptr;
    for (size_t i = first; i < rows.size(); ++i) {
      (rows[i].result.mode == BenchAttention::kGsa ? gsa : dense) = &rows[i].result;
    }
    const double speedup = gsa && dense ? dense->step_seconds / gsa->step_seconds : NAN;
    for (size_t i = first; i < rows.size(); ++i) {
      rows[i].speedup = speedup;
      const TrainBenchResult& r = rows[i].result;
      char peak[32], mfu[32], ratio[32];
      std::snprintf(peak, sizeof(peak), "%.2f", static_cast<double>(r.peak_bytes) / (1 << 30));
      std::snprintf(mfu, sizeof(mfu), "%.1f%%", 100.0 * rows[i].mfu);
      std::snprintf(ratio, sizeof(ratio), "%.2fx", speedup);
      std::printf("%8lld %-6s %9lld %9.3f %10.0f %9.3f %9.3f %9.3f %5.1f%% %9s %9.1f %6s %9.4f %8s\n", (long long)n,
                  bench_attention_name(r.mode), (long long)r.positions, r.step_seconds, r.tokens_per_second,
                  r.attention_seconds, r.communication_seconds, r.other_seconds,
                  100.0 * r.attention_seconds / r.step_seconds, r.peak_bytes < 0 ? "n/a" : peak, r.model_flops * 1e-12,
                  std::isfinite(rows[i].mfu) ? mfu : "n/a", r.first_loss, std::isfinite(speedup) ? ratio : "n/a");
    }
    std::fflush(stdout);
    if (!out_dir.empty()) {  // after every length: a later failure (out of memory) keeps the earlier rows
      write_file(join_path(out_dir, "train_bench.csv"), csv_of(rows));
      write_file(join_path(out_dir, "train_bench.json"),
                 json_of(rows, failures, o, device.str(), params, matmul_params, peak_tflops, shape));
    }
  }
  std::printf("communication: 0 (one GPU, no collective moves data); speedup = dense step time / GSA step time\n");
  if (!out_dir.empty()) {
    std::printf("wrote %s and %s\n", join_path(out_dir, "train_bench.csv").c_str(),
                join_path(out_dir, "train_bench.json").c_str());
  }
  if (!failures.empty()) std::printf("%zu run(s) failed (see above)\n", failures.size());
  return failures.empty() ? 0 : 1;
}

}  // namespace gsa::cli
