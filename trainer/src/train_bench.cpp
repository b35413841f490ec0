#include "gsa/trainer/train_bench.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "gsa/parallel/local_communicator.h"
#include "gsa/parallel/sp_attention.h"
#include "gsa/runtime/attention_mode.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/mask_predicate.h"
#include "gsa/runtime/memory_tracker.h"
#include "gsa/runtime/model_tokenizer.h"
#include "gsa/runtime/sdpa_attention.h"
#include "gsa/trainer/adamw.h"
#include "gsa/runtime/chunked_loss.h"
#include "gsa/trainer/timed_attention.h"

namespace gsa {
namespace {

AttentionModeOptions mode_options(BenchAttention mode, const GsaOptions& options) {
  return attention_mode_options(mode == BenchAttention::kGsa ? AttentionMode::kSelective : AttentionMode::kFull,
                                options);
}

// [B, T] int64 of one per-position field of equal-length rows.
at::Tensor stack_rows(const std::vector<GistLayout>& rows, std::vector<int64_t> GistLayout::*field, at::Device device) {
  std::vector<at::Tensor> out;
  for (const GistLayout& row : rows) out.push_back(at::tensor(row.*field, at::kLong));
  return at::stack(out).to(device);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

const char* bench_attention_name(BenchAttention mode) { return mode == BenchAttention::kGsa ? "gsa" : "dense"; }

TaskBatch train_bench_batch(const GsaOptions& options, BenchAttention mode, const TrainBenchShape& shape,
                            uint64_t seed, at::Device device) {
  GSA_CHECK(shape.suffix_tokens >= 1 && shape.tokens > shape.suffix_tokens + options.gist.sink,
            "train bench: ", shape.tokens, " tokens per sequence must exceed the suffix (", shape.suffix_tokens,
            ") plus the sink (", options.gist.sink, ")");
  GSA_CHECK(shape.batch >= 1, "train bench: batch ", shape.batch, " must be >= 1");
  const AttentionModeOptions mo = mode_options(mode, options);
  const std::shared_ptr<const ModelTokenizer> tokenizer = make_model_tokenizer(options);
  const std::vector<int64_t> gists = tokenizer->gist_ids();
  const int64_t text_ids = *std::min_element(gists.begin(), gists.end());  // random ids below every gist id
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> id(0, text_ids - 1);
  std::vector<std::vector<Document>> rows;
  for (int64_t b = 0; b < shape.batch; ++b) {
    Document doc;
    for (int64_t i = 0; i < shape.tokens - shape.suffix_tokens; ++i) doc.context.push_back(id(rng));
    for (int64_t i = 0; i < shape.suffix_tokens; ++i) doc.suffix.push_back(id(rng));
    rows.push_back({mode_document(doc, mo)});
  }
  return make_lm_batch(std::move(rows), mo.gist, *tokenizer, device);
}

int64_t count_allowed_pairs(const std::vector<GistLayout>& rows, at::Device device) {
  GSA_CHECK(!rows.empty(), "count_allowed_pairs: no rows");
  std::vector<const GistLayout*> pointers;
  int64_t length = 0;
  for (const GistLayout& row : rows) {
    pointers.push_back(&row);
    length = std::max(length, row.size());
  }
  const TokenMeta meta = make_token_meta(pointers, length, device);  // [B, T, F]
  const int64_t block = std::clamp<int64_t>((int64_t{1} << 26) / length, 1, length);  // ~64M pairs at a time
  int64_t total = 0;
  for (int64_t q0 = 0; q0 < length; q0 += block) {
    const int64_t n = std::min(block, length - q0);
    const TokenMeta queries{meta.fields.narrow(1, q0, n).unsqueeze(2)};  // [B, n, 1, F]
    const TokenMeta keys{meta.fields.narrow(1, 0, q0 + n).unsqueeze(1)};  // [B, 1, q0 + n, F]: causal
    total += gist_mask_allowed(queries, keys, rows[0].levels(), rows[0].options.prev_chunks).sum().item<int64_t>();
  }
  return total;
}

TrainBench::TrainBench(const GsaOptions& options, at::Device device)
    : options_(options),
      device_(device),
      model_(LlamaModel::create(options.model, static_cast<uint64_t>(options.train.seed), device,
                                /*draw_on_device=*/true)) {
  model_.set_requires_grad(true);
  at::NoGradGuard no_grad;
  for (const auto& [name, p] : model_.parameters()) initial_[name] = p.detach().clone();
}

int64_t TrainBench::matmul_params() const {
  int64_t n = 0;
  for (const auto& [name, p] : model_.parameters()) {
    const bool lookup_only = name == "model.embed_tokens.weight" && !options_.model.tie_embeddings;
    if (p.dim() == 2 && !lookup_only) n += p.numel();
  }
  return n;
}

TrainBenchResult TrainBench::run(BenchAttention mode, const TrainBenchShape& shape) {
  GSA_CHECK(shape.warmup >= 0 && shape.steps >= 1 && shape.loss_chunk >= 1, "train bench: warmup ", shape.warmup,
            " >= 0, steps ", shape.steps, " >= 1 and loss chunk ", shape.loss_chunk, " >= 1 are required");
  const TrainOptions& t = options_.train;
  const AttentionModeOptions mo = mode_options(mode, options_);
  const TaskBatch batch =
      train_bench_batch(options_, mode, shape, static_cast<uint64_t>(t.seed) + 1, device_);  // labels [B, T]
  const int64_t rows = static_cast<int64_t>(batch.layouts.size()), length = batch.layouts[0].size();
  for (const GistLayout& row : batch.layouts) {
    GSA_CHECK(row.size() == length, "train bench: rows of different lengths (", row.size(), " and ", length, ")");
  }
  const at::Tensor tokens = stack_rows(batch.layouts, &GistLayout::tokens, device_);      // [B, T]
  const at::Tensor rope_pos = stack_rows(batch.layouts, &GistLayout::rope_pos, device_);  // [B, T]
  const int64_t labelled = (batch.labels != -100).sum().item<int64_t>();
  GSA_CHECK(labelled > 0, "train bench: the batch has no labelled position");

  TrainBenchResult r;
  r.mode = mode;
  r.tokens = rows * shape.tokens;
  r.positions = rows * length;
  r.attention_pairs = mode == BenchAttention::kDense ? rows * length * (length + 1) / 2
                                                     : count_allowed_pairs(batch.layouts, device_);
  const ModelOptions& m = options_.model;
  r.attention_flops = 12.0 * static_cast<double>(m.num_heads * m.head_dim * m.num_layers) *
                      static_cast<double>(r.attention_pairs);
  r.model_flops = 6.0 * static_cast<double>(matmul_params()) * static_cast<double>(r.positions) + r.attention_flops;

  // The same starting point for every run: the initial weights, a fresh optimizer (moments, masters).
  {
    at::NoGradGuard no_grad;
    for (const auto& [name, p] : model_.parameters()) {
      p.copy_(initial_.at(name));
      p.mutable_grad() = at::Tensor();
    }
  }
  AdamWOptions adamw;
  adamw.beta1 = t.beta1;
  adamw.beta2 = t.beta2;
  adamw.weight_decay = t.weight_decay;
  adamw.master_weights = t.master_weights == DType::kFloat32;
  AdamW optimizer(model_.parameters(), adamw);
  ProcessGroups groups = make_single_process_groups(device_);

  struct StepTimes {
    double seconds = 0, attention = 0, loss = 0;
  };
  auto step = [&]() {
    synchronize_device(device_);
    const auto start = std::chrono::steady_clock::now();
    optimizer.zero_grad();
    // GSA: the plan of this batch (the trainer builds one per batch); kept alive through backward.
    std::unique_ptr<SpForwardPlan> plan;
    std::unique_ptr<LayerAttention> inner;
    if (mode == BenchAttention::kGsa) {
      plan = std::make_unique<SpForwardPlan>(
          make_sp_forward_plan(batch.layouts, shard_at_sections(batch.layouts, 1), mo.attention, *groups.sp, device_));
      inner = std::make_unique<SequenceParallelAttention>(*plan, mo.attention.selection, *groups.sp);
    } else {
      inner = std::make_unique<CausalSdpaAttention>();
    }
    TimedAttention timed(*inner, device_);
    const at::Tensor hidden = model_.forward_hidden(tokens, rope_pos, timed, mo.attention, mo.selective,
                                                    t.activation_checkpointing);  // [B, T, H]
    const at::Tensor loss = chunked_loss_sum(model_, hidden, batch.labels, shape.loss_chunk) /
                            static_cast<double>(labelled);
    loss.backward();
    optimizer.clip_grad_norm(t.grad_clip);
    optimizer.step(t.lr);
    synchronize_device(device_);
    StepTimes times;
    times.seconds = seconds_since(start);
    times.attention = timed.seconds();
    times.loss = loss.item<double>();
    return times;
  };

  for (int64_t i = 0; i < shape.warmup; ++i) {
    const StepTimes times = step();
    if (i == 0) r.first_loss = times.loss;
  }
  if (device_.is_cuda()) MemoryTracker::reset_peak(device_);
  for (int64_t i = 0; i < shape.steps; ++i) {
    const StepTimes times = step();
    if (shape.warmup == 0 && i == 0) r.first_loss = times.loss;
    r.last_loss = times.loss;
    r.step_seconds += times.seconds / static_cast<double>(shape.steps);
    r.attention_seconds += times.attention / static_cast<double>(shape.steps);
  }
  if (device_.is_cuda()) r.peak_bytes = MemoryTracker::peak_bytes(device_);
  if (shape.profile) r.profile = profile_ops([&] { step(); }, device_.is_cuda(), shape.profile_trace);
  r.communication_seconds = 0;  // one process: no collective moves data
  r.other_seconds = r.step_seconds - r.attention_seconds - r.communication_seconds;
  r.tokens_per_second = static_cast<double>(r.tokens) / r.step_seconds;
  return r;
}

}  // namespace gsa
