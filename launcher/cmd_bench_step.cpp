// gsa bench step: one point of a scaling experiment (gsa experiment scale runs it under mpirun, one rank per GPU
// or CPU process): the whole model sequence-parallel over the P ranks of the job as one sp group, timed per rank
// with the phase timers (gsa/parallel/phase_timers.h), one CSV row per rank (scale_columns.h).
//
//   --mode train   one training step: the sequence-parallel forward and loss (sp_model.h), backward, and the
//                  gradient all-reduce (GradientSync, overlapped with backward); no optimizer update (the
//                  weights stay the same, so every repeat does the same work).
//   --mode serve   the distributed decode of one prompt (DistributedGenerator, as the serving engine's sp backend
//                  runs it): prefill to the first logits (time to first token), then --decode-tokens steps
//                  (per-token latency and its breakdown; on CUDA over NCCL the steps replay a CUDA graph after
//                  three untimed ones, and the phase columns stay 0: --set attention.cuda_graphs=false for them).
// Data: --batch rows, each one synthetic retrieval-shaped document of --tokens raw tokens (random bytes: the
// gisted context, then --suffix raw tokens whose second half is the answer, labelled), laid out with the config's
// gist options; random weights of the config's model (seed 1). Cut over the ranks at top-level sections, evenly
// by positions (--placement sections), by the work estimated for the backend (--placement work, shard_by_work with
// placement_work_model: the keys' FLOPs on CUDA, the tokens on CPU), or by the work measured on this machine
// (--placement measured: one unit at the section cut, --repeats units timed per rank, then shard_by_measured_cost
// on the ranks' busy times).
// Timing: --warmup untimed units, then --repeats timed ones, each after a barrier; per rank the mean over the
// repeats.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "cli_flags.h"
#include "commands.h"
#include "mpi_launch.h"
#include "scale_columns.h"
#include "gsa/config/config_loader.h"
#include "gsa/parallel/distributed_decode.h"
#include "gsa/parallel/gradient_sync.h"
#include "gsa/parallel/phase_timers.h"
#include "gsa/parallel/process_groups.h"
#include "gsa/parallel/sp_attention.h"
#include "gsa/parallel/sp_model.h"
#include "gsa/runtime/decode_attention.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/memory_tracker.h"
#include "gsa/runtime/model_tokenizer.h"
#include "gsa/trainer/task_batch.h"

namespace gsa::cli {
namespace {

const char* const kHelp =
    "usage: mpirun -np P gsa bench step --mode train|serve --tokens N [flags]\n"
    "\n"
    "One scaling point: a training step or a served prompt of the whole model, sequence-parallel over the P\n"
    "ranks, with the per-rank breakdown (attention, gist tree, halo, routing, gradient all-reduce, decode merge,\n"
    "idle time, memory). gsa experiment scale runs it for every point of a grid.\n"
    "\n"
    "flags:\n"
    "  --mode train|serve       (required)\n"
    "  --tokens N               raw tokens per row (context + suffix) (required)\n"
    "  --config FILE            model, gist and attention config (default: the embedded demo)\n"
    "  --set a.b=v              config override (repeatable)\n"
    "  --batch 1                rows per training step (serve: 1)\n"
    "  --suffix 16              raw suffix tokens per row (the last half is the labelled answer)\n"
    "  --placement sections|work|measured   even cut of positions, or cut by the work estimated for the backend\n"
    "                           (CUDA: the keys each query sees; CPU: the tokens, i.e. sections), or by the\n"
    "                           per-rank times of --repeats units measured at the even cut first\n"
    "  --warmup 1 --repeats 3   untimed and timed units\n"
    "  --decode-tokens 8        serve: decode steps per repeat\n"
    "  --backend nccl|mpi       (default: nccl when CUDA is available, else mpi)\n"
    "  --timeout-s 600          communicator deadline\n"
    "  --csv FILE               rank 0 writes the header and one row per rank (scale_columns.h)\n";

struct StepFlags {
  std::string mode, placement;
  int64_t tokens = 0, batch = 1, suffix = 16, warmup = 1, repeats = 3, decode_tokens = 8;
};

// Per rank: what one timed unit cost, the mean over the repeats.
struct RankTimes {
  double step_ms = 0, ttft_ms = 0;
  std::array<double, kNumPhases> phase_ms{};
  double peak_mib = 0;
  int64_t grad_bytes = 0;  // the gradient all-reduce per step

  // Time in collectives (every phase but attention), summed over the repeats.
  double comm_ms() const {
    double ms = 0;
    for (int i = 1; i < kNumPhases; ++i) ms += phase_ms[i];
    return ms;
  }
};

// Every rank's `mine` (the same length on every rank) -> [P, width] on the host, rank-major.
at::Tensor all_gather_doubles(Communicator& sp, const std::vector<double>& mine) {
  const int64_t width = static_cast<int64_t>(mine.size());
  at::Tensor all = at::empty({sp.size() * width}, at::TensorOptions().dtype(at::kDouble).device(sp.device()));
  sp.all_gather(at::tensor(mine, at::kDouble).to(sp.device()), all);
  return all.cpu().view({sp.size(), width});
}

std::vector<std::vector<Example>> synthetic_rows(const StepFlags& f, int64_t vocab_text) {
  std::mt19937 rng(17);
  std::vector<std::vector<Example>> rows;
  for (int64_t b = 0; b < f.batch; ++b) {
    Example e;
    for (int64_t i = 0; i < f.tokens - f.suffix; ++i) e.doc.context.push_back(rng() % vocab_text);
    for (int64_t i = 0; i < f.suffix; ++i) e.doc.suffix.push_back(rng() % vocab_text);
    e.answer_len = std::max<int64_t>(1, f.suffix / 2);
    rows.push_back({e});
  }
  return rows;
}

void add_phases(std::array<double, kNumPhases>& total) {
  const std::array<double, kNumPhases> s = PhaseTimers::seconds();
  for (int i = 0; i < kNumPhases; ++i) total[i] += s[i] * 1e3;
}

double elapsed_ms(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

RankTimes time_training(const StepFlags& f, const GsaOptions& options, const TaskBatch& batch,
                        const SequenceShards& shards, ProcessGroups& groups) {
  LlamaModel model = LlamaModel::create(options.model, 1, groups.device);
  model.set_requires_grad(true);
  GradientSync sync(model.parameter_list(), groups.world);
  RankTimes t;
  for (const at::Tensor& p : model.parameter_list()) t.grad_bytes += p.nbytes();
  const bool selective = options.train.mode == TrainMode::kSelective;
  auto step = [&] {
    for (at::Tensor& p : model.parameter_list()) p.mutable_grad() = at::Tensor();
    SpLossResult r = sp_next_token_loss(model, batch.layouts, batch.labels, shards, options.attention, selective,
                                        *groups.sp, *groups.world, options.train.activation_checkpointing);
    r.loss.backward();
    sync.finish();
  };
  for (int64_t i = 0; i < f.warmup; ++i) step();
  MemoryTracker::reset_peak(groups.device);
  for (int64_t i = 0; i < f.repeats; ++i) {
    groups.world->barrier();
    PhaseTimers::enable(groups.device);
    const auto start = std::chrono::steady_clock::now();
    step();
    synchronize_device(groups.device);
    t.step_ms += elapsed_ms(start);
    PhaseTimers::disable();
    add_phases(t.phase_ms);
  }
  t.peak_mib = static_cast<double>(MemoryTracker::peak_bytes(groups.device)) / (1 << 20);
  return t;
}

RankTimes time_serving(const StepFlags& f, const GsaOptions& options, const TaskBatch& batch,
                       const SequenceShards& shards, ProcessGroups& groups) {
  LlamaModel model = LlamaModel::create(options.model, 1, groups.device);
  at::NoGradGuard no_grad;
  // Decode steps replayed as a CUDA graph (distributed_decode_batch.h) cannot be split into phases: their phase
  // columns stay 0 (--set attention.cuda_graphs=false times the eager step with its breakdown).
  const bool graphs = decode_step_capturable(model, options.attention) && groups.sp->can_capture();
  // Before the timed steps: the first step grows the tail cache (a new graph), the second runs eagerly, the third
  // captures; the timed steps only replay.
  const int64_t warmup_steps = graphs ? 3 : 0;
  const int64_t max_positions = batch.layouts[0].size() + warmup_steps + f.decode_tokens;
  RankTimes t;
  auto run = [&](bool timed) {
    DistributedGenerator gen(model, options.attention, batch.layouts[0], shards, max_positions, *groups.sp);
    groups.world->barrier();
    auto start = std::chrono::steady_clock::now();
    at::Tensor logits = gen.prefill();
    synchronize_device(groups.device);
    if (timed) t.ttft_ms += elapsed_ms(start);
    int64_t token = logits.argmax().item<int64_t>();
    for (int64_t i = 0; i < warmup_steps; ++i) token = gen.step(token).argmax().item<int64_t>();
    groups.world->barrier();
    if (timed && !graphs) PhaseTimers::enable(groups.device);
    start = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < f.decode_tokens; ++i) token = gen.step(token).argmax().item<int64_t>();
    if (timed) {
      t.step_ms += elapsed_ms(start) / static_cast<double>(f.decode_tokens);
      if (graphs) return;
      PhaseTimers::disable();
      std::array<double, kNumPhases> per_token{};
      add_phases(per_token);
      for (int i = 0; i < kNumPhases; ++i) t.phase_ms[i] += per_token[i] / static_cast<double>(f.decode_tokens);
    }
  };
  for (int64_t i = 0; i < f.warmup; ++i) run(false);
  MemoryTracker::reset_peak(groups.device);
  for (int64_t i = 0; i < f.repeats; ++i) run(true);
  t.peak_mib = static_cast<double>(MemoryTracker::peak_bytes(groups.device)) / (1 << 20);
  return t;
}

// --placement measured: --repeats units (after the warm-up) at the section cut, timed per rank as the point
// itself is; every rank gathers the ranks' mean busy times (step minus communication) and cuts by them
// (shard_by_measured_cost), so the cuts agree without another message. *busy_ms gets the gathered times.
SequenceShards measured_shards(const StepFlags& f, const GsaOptions& options, const TaskBatch& batch,
                               ProcessGroups& groups, std::vector<double>* busy_ms) {
  Communicator& sp = *groups.sp;
  const SequenceShards sections = shard_at_sections(batch.layouts, sp.size());
  const RankTimes t = f.mode == "train" ? time_training(f, options, batch, sections, groups)
                                        : time_serving(f, options, batch, sections, groups);
  const at::Tensor host = all_gather_doubles(sp, {(t.step_ms - t.comm_ms()) / static_cast<double>(f.repeats)});
  busy_ms->assign(host.data_ptr<double>(), host.data_ptr<double>() + sp.size());
  return shard_by_measured_cost(batch.layouts, sp.size(), sections, *busy_ms);
}

}  // namespace

int run_bench_step(const Args& args) {
  Flags flags(args, "bench step");
  if (flags.help()) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  StepFlags f;
  f.mode = flags.require_string("mode");
  f.tokens = flags.require_int("tokens");
  const std::string config = flags.get_string("config", "");
  const std::vector<std::string> overrides = flags.get_all("set");
  f.batch = flags.get_int("batch", 1);
  f.suffix = flags.get_int("suffix", 16);
  f.placement = flags.get_string("placement", "sections");
  f.warmup = flags.get_int("warmup", 1);
  f.repeats = flags.get_int("repeats", 3);
  f.decode_tokens = flags.get_int("decode-tokens", 8);
  const CommFlags comm = read_comm_flags(flags, "timeout-s", 600);
  const std::string csv_path = flags.get_string("csv", "");
  flags.finish();
  GSA_CHECK(f.mode == "train" || f.mode == "serve", "gsa bench step: --mode must be train or serve, got '", f.mode,
            "'");
  GSA_CHECK(f.placement == "sections" || f.placement == "work" || f.placement == "measured",
            "gsa bench step: --placement must be sections, work or measured, got '", f.placement, "'");
  GSA_CHECK(f.suffix >= 2, "gsa bench step: --suffix must be >= 2 (the answer is its second half), got ", f.suffix);
  GSA_CHECK(f.batch >= 1 && (f.mode == "train" || f.batch == 1), "gsa bench step: --batch must be >= 1 (1 for "
            "serve), got ", f.batch);
  GSA_CHECK(f.warmup >= 0 && f.repeats >= 1 && f.decode_tokens >= 1,
            "gsa bench step: --warmup >= 0, --repeats >= 1 and --decode-tokens >= 1 are required");
  const GsaOptions options = config.empty() ? load_embedded_demo_config(overrides) : load_config_file(config, overrides);
  GSA_CHECK(f.tokens > f.suffix + options.gist.sink + options.gist.chunk, "gsa bench step: --tokens ", f.tokens,
            " is too short for a ", f.suffix, "-token suffix after the sink and one chunk");

  return run_mpi_job([&](const MpiSession& session) {
    at::set_num_threads(1);
    MemoryTracker::install();
    ProcessGroups groups = make_process_groups(session, 1, session.world_size(), comm.backend, comm.timeout);
    Communicator& sp = *groups.sp;
    const int me = sp.rank();
    const std::shared_ptr<const ModelTokenizer> tokenizer = make_model_tokenizer(options);
    const TaskBatch batch = make_answer_batch(synthetic_rows(f, 256), options.gist, *tokenizer, groups.device);
    const WorkModel work = work_model_of(options.model);
    std::vector<double> measured_ms;  // --placement measured: the ranks' busy times at the section cut
    const SequenceShards shards = f.placement == "work"
                                      ? shard_by_work(batch.layouts, sp.size(),
                                                      placement_work_model(options.model, groups.device.type()))
                                  : f.placement == "measured" ? measured_shards(f, options, batch, groups, &measured_ms)
                                                              : shard_at_sections(batch.layouts, sp.size());
    const SpForwardPlan plan = make_sp_forward_plan(batch.layouts, shards, options.attention, sp, groups.device);
    int64_t owned_gists = 0, tree_rows = 0;
    for (const GistLayout& row : batch.layouts) {
      for (int64_t pos = 0; pos < row.size(); ++pos) {
        const bool replicated = row.is_gist(pos) || row.sink[pos] != 0;
        tree_rows += replicated;
        if (row.is_gist(pos) && pos >= plan.local_begin() && pos < plan.local_begin() + plan.local_size()) {
          ++owned_gists;
        }
      }
    }
    const double my_work = shard_work(batch.layouts, shards, work)[static_cast<size_t>(me)];

    const RankTimes t = f.mode == "train" ? time_training(f, options, batch, shards, groups)
                                          : time_serving(f, options, batch, shards, groups);
    const double n = static_cast<double>(f.repeats);
    const double step_ms = t.step_ms / n, comm_ms = t.comm_ms() / n, busy_ms = step_ms - comm_ms;
    // Every rank's numbers to rank 0 (doubles in a fixed order).
    std::vector<double> mine{step_ms, t.ttft_ms / n, comm_ms, busy_ms, t.peak_mib, my_work,
                             static_cast<double>(owned_gists), static_cast<double>(plan.halo_size()),
                             static_cast<double>(plan.local_size())};
    for (int i = 0; i < kNumPhases; ++i) mine.push_back(t.phase_ms[i] / n);
    const at::Tensor host = all_gather_doubles(sp, mine);
    if (me != 0) return 0;

    const auto v = host.accessor<double, 2>();
    double max_busy = 0, sum_busy = 0;
    for (int r = 0; r < sp.size(); ++r) {
      max_busy = std::max(max_busy, v[r][3]);
      sum_busy += v[r][3];
    }
    const double imbalance = sum_busy > 0 ? max_busy / (sum_busy / sp.size()) : 1.0;
    const int64_t elem = at::elementSize(to_scalar_type(options.model.dtype));
    const int64_t kv_row_bytes = options.model.num_kv_heads * 2 * options.model.head_dim * elem;
    const int64_t merge_bytes = options.model.num_heads * (options.model.head_dim + 1) * 4;
    std::ofstream csv;
    if (!csv_path.empty()) {
      csv.open(csv_path);
      GSA_CHECK(csv.good(), "gsa bench step: cannot write --csv ", csv_path);
      csv.precision(10);
      csv << kRankColumns << "\n";
    }
    std::printf("gsa bench step: %s, %d rank(s) (%s), %lld tokens x %lld rows, placement %s, imbalance %.3f\n",
                f.mode.c_str(), sp.size(), comm.backend_name.c_str(), (long long)f.tokens, (long long)f.batch,
                f.placement.c_str(), imbalance);
    if (f.placement == "measured") {
      std::printf("measured at the section cut, busy ms per rank:");
      for (double ms : measured_ms) std::printf(" %.1f", ms);
      std::printf("; cut %s\n", shards.describe().c_str());
    }
    std::printf("%4s %8s %10s %10s %10s %10s %10s %10s %10s\n", "rank", "local", "step ms", "attn ms", "comm ms",
                "busy ms", "idle ms", "ttft ms", "peak MiB");
    for (int r = 0; r < sp.size(); ++r) {
      const double idle = max_busy - v[r][3];
      std::printf("%4d %8lld %10.2f %10.2f %10.2f %10.2f %10.2f %10.2f %10.1f\n", r, (long long)v[r][8], v[r][0],
                  v[r][9], v[r][2], v[r][3], idle, v[r][1], v[r][4]);
      if (!csv.is_open()) continue;
      csv << f.mode << "," << sp.size() << "," << comm.backend_name << "," << f.placement << "," << f.tokens << ","
          << f.batch << "," << r << "," << (long long)v[r][8] << "," << (long long)v[r][6] << "," << tree_rows << ","
          << (long long)v[r][7] << "," << v[r][5] << "," << v[r][0] << ",";
      if (f.mode == "serve") csv << v[r][1];
      csv << ",";
      for (int i = 0; i < kNumPhases; ++i) csv << v[r][9 + i] << ",";
      csv << v[r][2] << "," << v[r][3] << "," << v[r][3] - v[r][9] << "," << idle << "," << imbalance << ","
          << v[r][4] << "," << t.grad_bytes << "," << kv_row_bytes << "," << merge_bytes << ","
          << options.model.num_layers << ","
          << f.repeats << "\n";
    }
    std::fflush(stdout);
    if (csv.is_open()) {
      csv.close();
      GSA_CHECK(!csv.fail(), "gsa bench step: writing --csv ", csv_path, " failed");
    }
    return 0;
  });
}

}  // namespace gsa::cli
