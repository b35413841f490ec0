// gsa generate: completes a prompt from a checkpoint; the context is gisted, the prompt is the raw suffix.
#include <iostream>
#include <optional>

#include "cli_flags.h"
#include "commands.h"
#include "device_flag.h"
#include "mpi_launch.h"
#include "gsa/runtime/attention_mode.h"
#include "gsa/runtime/checkpoint.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/file_util.h"
#include "gsa/serve/http_client.h"
#include "gsa/serve/inference_engine.h"

namespace gsa::cli {
namespace {

constexpr const char* kHelp =
    "usage: gsa generate --checkpoint DIR [--context TEXT | --context-file FILE] [--prompt TEXT]\n"
    "                    [--max-new-tokens N] [--temperature T] [--top-p P] [--seed S] [--device cpu|cuda]\n"
    "                    [--attention full|gist|selective]\n"
    "       gsa generate --server URL [--api-key TOKEN] [--model gsa] [same text and sampling flags]\n"
    "\n"
    "Prints the completion as it is generated, then one line of statistics on stderr. Greedy unless\n"
    "--temperature > 0 (a finite number; --top-p in (0, 1]). The KV cache grows with the completion, so a large\n"
    "--max-new-tokens allocates nothing up front.\n"
    "--attention: full = plain causal attention, no gist tokens (the model as without GSA); gist = compressed\n"
    "context, no unfolding; selective = GSA selective unfolding. Default: the checkpoint config's (selective when\n"
    "attention.selection.enabled, else gist).\n"
    "--server URL: send the request to a running gsa serve (http://HOST:PORT) and stream its answer.\n"
    "--checkpoint: a training output dir (its checkpoints/latest), a checkpoints/ folder (its latest) or one\n"
    "step folder (checkpoints/step-000300).\n"
    "\n"
    "Distributed decode: under mpirun the prompt is cut over the ranks (--sp, default: all of them); each keeps\n"
    "its part of the KV cache, rank 0 prints. e.g. mpirun -np 2 gsa generate --checkpoint D --context-file F\n"
    "  --backend mpi|nccl   (default nccl with CUDA)   --comm-timeout-s S (default 300)\n";

}  // namespace

int run_generate(const Args& args) {
  Flags flags(args, "generate");
  if (flags.help()) {
    std::cout << kHelp;
    return 0;
  }
  const std::string server = flags.get_string("server", "");
  const std::string checkpoint = server.empty() ? flags.require_string("checkpoint") : "";
  GSA_CHECK(server.empty() || !flags.has("checkpoint"), "give --checkpoint (local) or --server (remote), not both");
  CompletionRequest request;
  request.context = flags.get_string("context", "");
  const std::string context_file = flags.get_string("context-file", "");
  GSA_CHECK(request.context.empty() || context_file.empty(), "give --context or --context-file, not both");
  if (!context_file.empty()) {
    GSA_CHECK(path_exists(context_file) && !is_directory(context_file), "--context-file: cannot read '",
              context_file, "'");
    request.context = read_file(context_file);
  }
  request.prompt = flags.get_string("prompt", "");
  request.sampling.max_new_tokens = flags.get_int("max-new-tokens", 16);
  request.sampling.temperature = flags.get_double("temperature", 0.0);
  request.sampling.top_p = flags.get_double("top-p", 1.0);
  request.sampling.seed = static_cast<uint64_t>(flags.get_int("seed", 0));
  const std::string attention_name = flags.get_string("attention", "");  // "": the config's mode
  std::optional<AttentionMode> attention;
  if (!attention_name.empty()) attention = parse_attention_mode(attention_name);
  const std::string problem = invalid_sampling(request.sampling);
  GSA_CHECK(problem.empty(), problem, " (flags --temperature, --top-p, --max-new-tokens)");
  GSA_CHECK(!request.context.empty() || !request.prompt.empty(), "gsa generate: give --context and/or --prompt");
  // Each token is printed as soon as it is chosen.
  request.on_text = [](const std::string& text) { std::cout << text << std::flush; };

  if (!server.empty()) {
    serve::CompletionCall call;
    call.model = flags.get_string("model", "gsa");
    call.context = request.context;
    call.prompt = request.prompt;
    call.max_tokens = request.sampling.max_new_tokens;
    call.temperature = request.sampling.temperature;
    call.top_p = request.sampling.top_p;
    call.seed = static_cast<int64_t>(request.sampling.seed);
    const std::string api_key = flags.get_string("api-key", "");
    flags.finish();
    const std::string finish = serve::stream_completion(server, call, api_key, request.on_text);
    std::cout << "\n";
    std::cerr << "finish reason: " << finish << " (" << server << ")\n";
    return 0;
  }
  const at::Device device = device_from_flags(flags);
  const bool distributed = flags.has("sp") || launched_by_mpirun();
  const int64_t sp = flags.get_int("sp", 0);  // 0: the whole world
  const CommFlags comm = read_comm_flags(flags, "comm-timeout-s", 300);
  flags.finish();

  // printer: this process prints (one process, or world rank 0 under mpirun: one copy whatever the sp groups).
  auto complete = [&](const at::Device& on, Communicator* group, bool printer) {
    GsaOptions options;
    LlamaModel model = load_checkpoint(checkpoint, on, &options);
    InferenceEngine engine(std::move(model), options);
    if (attention) engine.set_attention_mode(*attention);
    engine.use_sequence_parallel(group);
    if (!printer) request.on_text = nullptr;
    CompletionResult result = engine.complete(request);
    if (printer) {
      std::cout << "\n";
      std::cerr << "prompt " << result.prompt_tokens << " tokens (gists included), prefill " << result.prefill_ms
                << " ms, " << result.tokens.size() << " tokens at " << result.decode_ms_per_token << " ms/token"
                << (group ? str_cat(", ", group->size(), " ranks (", group->name(), ")") : std::string()) << "\n";
    }
    return 0;
  };
  if (!distributed) return complete(device, nullptr, true);
  return run_mpi_job([&](const MpiSession& session) {
    const int64_t group = sp > 0 ? sp : session.world_size();
    GSA_CHECK(session.world_size() % group == 0, "gsa generate: --sp ", group, " does not divide the ",
              session.world_size(), " ranks");
    ProcessGroups groups = make_process_groups(session, session.world_size() / group, group, comm.backend,
                                               comm.timeout);
    return complete(groups.device, groups.sp.get(), groups.world->rank() == 0);
  });
}

}  // namespace gsa::cli
