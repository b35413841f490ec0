// gsa eval: answer loss and retrieval accuracy of one checkpoint on held-out synthetic tasks at several lengths,
// in the attention modes full | gist | selective side by side (trainer/evaluator.h).
#include <ATen/Parallel.h>

#include <iostream>
#include <sstream>

#include "cli_flags.h"
#include "commands.h"
#include "device_flag.h"
#include "mpi_launch.h"
#include "gsa/config/config_loader.h"
#include "gsa/runtime/attention_mode.h"
#include "gsa/runtime/checkpoint.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/file_util.h"
#include "gsa/trainer/eval_report.h"
#include "gsa/trainer/evaluator.h"

namespace gsa::cli {
namespace {

constexpr const char* kHelp =
    "usage: gsa eval --checkpoint DIR [--config F.pbtxt] [--set a.b=value ...] [--task retrieval]\n"
    "                [--lengths 512,1024,2048] [--samples N] [--modes full,gist,selective] [--seed S]\n"
    "                [--batch N] [--json OUT] [--device cpu|cuda] [--threads N]\n"
    "\n"
    "Teacher-forced answer loss (nats per answer token) and accuracy (whole answer right, argmax) on held-out\n"
    "samples of a synthetic task, at each length, in each attention mode, printed as a table (and written as\n"
    "JSON with --json). Every mode scores the same samples.\n"
    "  --checkpoint DIR  a training output dir, its checkpoints/ folder or one step folder\n"
    "  --config F        use F's gist, attention and data sections (its model section must match the\n"
    "                    checkpoint's tensors); default: the checkpoint's own config.pbtxt. --set overrides either.\n"
    "  --task NAME       retrieval (key-value retrieval, data.retrieval's key/value shape) or multi_doc\n"
    "                    (multi-document key-value retrieval, data.multi_doc's shape, as many documents as\n"
    "                    fit, one question); default multi_doc when the config's data.source is MULTI_DOC,\n"
    "                    else retrieval\n"
    "  --lengths L,...   raw tokens per document (context + question + answer, gists not counted); default\n"
    "                    512,1024,2048. A length the task cannot fill is an error naming the longest it can.\n"
    "  --samples N       samples per length (default 64)\n"
    "  --modes M,...     full: plain causal attention, no gist tokens; gist: compressed context, no unfolding;\n"
    "                    selective: GSA selective unfolding per the config (default full,gist,selective)\n"
    "  --seed S          sample seed (default 0); samples of length L come from a mix of S and L\n"
    "  --batch N         samples per forward (default 8)\n"
    "  --json OUT        also write the results as JSON to OUT\n"
    "\n"
    "Sequence parallel: under mpirun every rank runs every sample, each sequence cut over the ranks (dp 1, sp =\n"
    "the world); the table and the JSON come from rank 0. e.g. mpirun -np 2 gsa eval --checkpoint D\n"
    "  --backend mpi|nccl   (default nccl with CUDA)   --comm-timeout-s S (default 300)\n";

}  // namespace

int run_eval(const Args& args) {
  Flags flags(args, "eval");
  if (flags.help()) {
    std::cout << kHelp;
    return 0;
  }
  const std::string checkpoint = flags.require_string("checkpoint");
  const std::string config = flags.get_string("config", "");
  const std::vector<std::string> overrides = flags.get_all("set");
  EvalSettings settings;
  const std::string task = flags.get_string("task", "");
  settings.lengths = flags.get_int_list("lengths", {512, 1024, 2048});
  settings.samples = flags.get_int("samples", 64);
  settings.modes = parse_attention_modes(flags.get_string("modes", "full,gist,selective"));
  const int64_t seed = flags.get_int("seed", 0);
  settings.batch_size = flags.get_int("batch", 8);
  const std::string json = flags.get_string("json", "");
  const at::Device device = device_from_flags(flags);
  const bool distributed = launched_by_mpirun();
  const CommFlags comm = read_comm_flags(flags, "comm-timeout-s", 300);
  flags.finish();
  GSA_CHECK(seed >= 0, "--seed must be >= 0, got ", seed);
  settings.seed = static_cast<uint64_t>(seed);
  GSA_CHECK(settings.samples >= 1, "--samples must be >= 1, got ", settings.samples);
  GSA_CHECK(settings.batch_size >= 1, "--batch must be >= 1, got ", settings.batch_size);
  for (int64_t length : settings.lengths) GSA_CHECK(length >= 1, "--lengths: ", length, " is not a length");
  GSA_CHECK(json.empty() || !is_directory(json), "--json: '", json, "' is a directory");

  const std::string dir = resolve_checkpoint(checkpoint);
  const Checkpoint loaded = load_checkpoint_dir(dir, /*with_optimizer=*/false);
  const GsaOptions options = config.empty()
                                 ? load_config_text(loaded.config_text, join_path(dir, "config.pbtxt"), overrides)
                                 : load_config_file(config, overrides);
  settings.task = !task.empty() ? task : options.data.source == DataSourceKind::kMultiDoc ? "multi_doc" : "retrieval";

  auto evaluate = [&](const at::Device& on, Communicator* sp) {
    const LlamaModel model = LlamaModel::from_tensors(options.model, loaded.model, on);
    const bool root = sp == nullptr || sp->rank() == 0;
    if (root) {
      std::cout << "gsa eval: " << dir << ", " << model.num_parameters() << " parameters, device " << on
                << (sp ? str_cat(", ", sp->size(), " ranks (sp ", sp->size(), ", ", sp->name(), ")") : std::string())
                << "\n";
    }
    const EvalReport report = run_eval(model, options, settings, sp);
    if (root) {
      std::cout << format_eval_table(report);
      if (!json.empty()) {
        write_file_atomic(json, eval_report_json(report, dir, sp ? sp->size() : 1));
        std::cout << "results: " << json << "\n";
      }
    }
    return 0;
  };
  if (!distributed) return evaluate(device, nullptr);
  return run_mpi_job([&](const MpiSession& session) {
    at::set_num_threads(1);
    ProcessGroups groups = make_process_groups(session, 1, session.world_size(), comm.backend, comm.timeout);
    return evaluate(groups.device, groups.sp.get());
  });
}

}  // namespace gsa::cli
