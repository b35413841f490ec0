// gsa train: trains a model; without --config it runs the embedded demo (configs/demo.pbtxt).
#include <ATen/Parallel.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>

#include "cli_flags.h"
#include "commands.h"
#include "device_flag.h"
#include "mpi_launch.h"
#include "gsa/config/config_loader.h"
#include "gsa/runtime/checkpoint.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/generation.h"
#include "gsa/runtime/model_tokenizer.h"
#include "gsa/trainer/synthetic_tasks.h"
#include "gsa/trainer/trainer.h"

namespace gsa::cli {
namespace {

constexpr const char* kHelp =
    "usage: gsa train [--config FILE.pbtxt] [--set a.b=value ...] [--output-dir DIR] [--device cpu|cuda]\n"
    "                 [--resume] [--checkpoint-every N] [--keep-checkpoints K] [--init-from CKPT]\n"
    "                 [--threads N] [--samples N] [--dp N --sp N --backend mpi|nccl --comm-timeout-s S]\n"
    "\n"
    "Trains on the config's data (data.source: a synthetic task or a corpus). Without --config: the\n"
    "embedded demo (configs/demo.pbtxt).\n"
    "  --set a.b=value   override one config field (repeatable), e.g. --set train.steps=100\n"
    "  --output-dir DIR  write metrics.jsonl, tensorboard/ and checkpoints/ there (--set train.output_dir=DIR)\n"
    "  --resume          continue from DIR/checkpoints/latest when there is one (model, optimizer, step, data);\n"
    "                    without it a DIR that holds a checkpoint is refused\n"
    "  --checkpoint-every N  also checkpoint every N steps (--set train.checkpoint_every=N; default: at the end)\n"
    "  --keep-checkpoints K  keep the newest K checkpoints, 0 = all (--set train.keep_checkpoints=K; default 3)\n"
    "  --samples N       after training, answer N fresh prompts of the synthetic task by greedy decoding\n"
    "                    (default 3; none for a corpus)\n"
    "  --init-from CKPT  start from the weights of checkpoint CKPT (e.g. made by gsa import); the model and gist\n"
    "                    sections of the config come from CKPT's config\n"
    "\n"
    "Distributed: launch under mpirun with world = dp x sp ranks, e.g.\n"
    "  mpirun -np 4 gsa train --dp 2 --sp 2 --backend nccl     (one rank per GPU)\n"
    "  --dp N            data-parallel replicas (default: world / sp)\n"
    "  --sp N            ranks sharing each sequence (sequence parallelism, default 1)\n"
    "  --backend B       mpi (CPU tensors) or nccl (CUDA tensors, one GPU per rank); default nccl with CUDA\n"
    "  --comm-timeout-s S  a collective not done in S s aborts the job naming the rank (default 300)\n";

// Greedy answers to fresh prompts of the synthetic task, printed next to the expected values (nothing for a
// corpus: it has no answers).
void show_samples(const Trainer& trainer, const GsaOptions& options, int64_t count) {
  if (options.data.source != DataSourceKind::kRetrieval && options.data.source != DataSourceKind::kPasskey &&
      options.data.source != DataSourceKind::kMultiDoc) {
    return;
  }
  const ModelTokenizer& tokenizer = *trainer.tokenizer();
  const std::unique_ptr<SyntheticTask> task = make_synthetic_task(retrieval_only(options.data), trainer.tokenizer());
  std::mt19937_64 rng(static_cast<uint64_t>(options.train.seed) + 0x5a3b1e);
  int64_t right = 0;
  for (int64_t i = 0; i < count; ++i) {
    Example example = task->sample(rng);
    const auto answer_begin = example.doc.suffix.end() - example.answer_len;
    const std::vector<int64_t> answer(answer_begin, example.doc.suffix.end());
    example.doc.suffix.erase(answer_begin, example.doc.suffix.end());
    if (options.gist.word_aware) example.doc.context_word_starts = tokenizer.word_starts(example.doc.context);
    GistLayout layout = build_layout({example.doc}, options.gist, tokenizer);
    Generator gen(trainer.model(), options.attention, layout, layout.size() + example.answer_len + 1);
    SamplingOptions sampling;
    sampling.max_new_tokens = example.answer_len;
    tokenizer.limit_sampling(&sampling);
    std::vector<int64_t> got = gen.generate(sampling);
    right += got == answer;
    std::cout << "  sample " << i + 1 << ": " << tokenizer.decode(example.doc.context) << " "
              << tokenizer.decode(example.doc.suffix) << " -> " << tokenizer.decode(got) << " (expected "
              << tokenizer.decode(answer) << ")\n";
  }
  std::cout << "  samples right: " << right << "/" << count << "\n";
}

}  // namespace

int run_train(const Args& args) {
  Flags flags(args, "train");
  if (flags.help()) {
    std::cout << kHelp;
    return 0;
  }
  const std::string config = flags.get_string("config", "");
  std::vector<std::string> overrides = flags.get_all("set");
  const std::string output_dir = flags.get_string("output-dir", "");
  if (!output_dir.empty()) overrides.push_back("train.output_dir=" + output_dir);
  for (const char* flag : {"checkpoint-every", "keep-checkpoints"}) {
    if (!flags.has(flag)) continue;
    std::string field = flag;
    field[field.find('-')] = '_';
    overrides.push_back(str_cat("train.", field, "=", flags.get_int(flag, 0)));
  }
  const bool resume = flags.get_bool("resume", false);
  // A status line redrawn every step, on a terminal only. Not under mpirun: it gives the ranks a pseudo-terminal
  // whatever its own output is.
  const bool live = ::isatty(::fileno(stdout)) == 1 && !launched_by_mpirun();
  const int64_t samples = flags.get_int("samples", 3);
  const at::Device device = device_from_flags(flags);
  const bool distributed = flags.has("dp") || flags.has("sp") || launched_by_mpirun();
  const int64_t sp = flags.get_int("sp", 1);
  const int64_t dp = flags.get_int("dp", 0);  // 0: world / sp
  const CommFlags comm = read_comm_flags(flags, "comm-timeout-s", 300);
  const std::string init_from = flags.get_string("init-from", "");
  flags.finish();

  GsaOptions options = config.empty() ? load_embedded_demo_config(overrides) : load_config_file(config, overrides);
  if (!init_from.empty()) options = with_model_of_checkpoint(options, init_from);
  if (!distributed) {
    std::cout << "config: " << (config.empty() ? embedded_demo_config_name() : config) << "\n";
    Trainer trainer(options, device);
    if (!init_from.empty()) trainer.init_from(init_from);
    if (resume) trainer.resume();
    trainer.run(std::cout, live);
    if (samples > 0) show_samples(trainer, options, samples);
    return 0;
  }
  return run_mpi_job([&](const MpiSession& session) {
    GSA_CHECK(sp >= 1, "gsa train: --sp must be >= 1, got ", sp);
    GSA_CHECK(dp > 0 || session.world_size() % sp == 0, "gsa train: the ", session.world_size(),
              " ranks are not a multiple of --sp ", sp, " (world = dp x sp)");
    const int64_t replicas = dp > 0 ? dp : session.world_size() / sp;
    at::set_num_threads(1);
    ProcessGroups groups = make_process_groups(session, replicas, sp, comm.backend, comm.timeout);
    const bool root = groups.mesh.rank == 0;
    std::ostringstream quiet;
    std::ostream& out = root ? std::cout : quiet;
    out << "config: " << (config.empty() ? embedded_demo_config_name() : config) << "\n";
    Trainer trainer(options, device, &groups);
    if (!init_from.empty()) trainer.init_from(init_from);
    if (resume) trainer.resume();
    trainer.run(out, root && live);
    if (root && samples > 0) show_samples(trainer, options, samples);
    return 0;
  });
}

}  // namespace gsa::cli
