// gsa generate: completes a prompt from a checkpoint; the context is gisted, the prompt is the raw suffix.
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli_flags.h"
#include "commands.h"
#include "device_flag.h"
#include "gsa/runtime/error.h"
#include "gsa/serve/inference_engine.h"
#include "gsa/trainer/trainer.h"

namespace gsa::cli {
namespace {

constexpr const char* kHelp =
    "usage: gsa generate --checkpoint DIR [--context TEXT | --context-file FILE] [--prompt TEXT]\n"
    "                    [--max-new-tokens N] [--temperature T] [--top-p P] [--seed S] [--device cpu|cuda]\n"
    "\n"
    "Prints the completion, then one line of statistics on stderr. Greedy unless --temperature > 0.\n";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  GSA_CHECK(in.good(), "--context-file: cannot read '", path, "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

int run_generate(const Args& args) {
  Flags flags(args, "generate");
  if (flags.help()) {
    std::cout << kHelp;
    return 0;
  }
  const std::string checkpoint = flags.require_string("checkpoint");
  CompletionRequest request;
  request.context = flags.get_string("context", "");
  const std::string context_file = flags.get_string("context-file", "");
  GSA_CHECK(request.context.empty() || context_file.empty(), "give --context or --context-file, not both");
  if (!context_file.empty()) request.context = read_file(context_file);
  request.prompt = flags.get_string("prompt", "");
  request.sampling.max_new_tokens = flags.get_int("max-new-tokens", 16);
  request.sampling.temperature = flags.get_double("temperature", 0.0);
  request.sampling.top_p = flags.get_double("top-p", 1.0);
  request.sampling.seed = static_cast<uint64_t>(flags.get_int("seed", 0));
  GSA_CHECK(request.sampling.max_new_tokens >= 1, "--max-new-tokens must be >= 1");
  const at::Device device = device_from_flags(flags);
  flags.finish();

  GsaOptions options;
  LlamaModel model = load_checkpoint(checkpoint, device, &options);
  InferenceEngine engine(std::move(model), options);
  CompletionResult result = engine.complete(request);
  std::cout << result.text << "\n";
  std::cerr << "prompt " << result.prompt_tokens << " tokens (gists included), prefill " << result.prefill_ms
            << " ms, " << result.tokens.size() << " tokens at " << result.decode_ms_per_token << " ms/token\n";
  return 0;
}

}  // namespace gsa::cli
