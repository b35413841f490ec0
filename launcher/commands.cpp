#include "commands.h"

#include "gsa/runtime/error.h"

namespace gsa::cli {

std::string top_level_help() {
  return "usage: gsa <command> [flags]   (gsa <command> --help for its flags)\n"
         "\n"
         "commands:\n"
         "  train      train a model (no --config: the embedded demo, a synthetic retrieval task)\n"
         "  eval       loss and retrieval accuracy of a checkpoint: full | gist | selective attention\n"
         "  generate   generate text from a checkpoint (or from a running server)\n"
         "  serve      OpenAI-compatible HTTP server over a checkpoint (one process or under mpirun)\n"
         "  inspect    print gist layouts and attention masks (inspect layout | inspect mask)\n"
         "  tokenize   text to ids (or --decode ids to text) with a Hugging Face tokenizer.json\n"
         "  import     a Hugging Face Llama / Qwen2 folder into a gsa checkpoint with gist tokens\n"
         "  export     a gsa checkpoint as a Hugging Face folder (transformers loads it)\n"
         "  bench      benchmarks (bench attention | comm | sp | kernels | decode | serve | train | step)\n"
         "  experiment scaling experiments over ranks and contexts (experiment scale --spec FILE --out DIR)\n";
}

int run_command(const std::string& command, const Args& args) {
  if (command == "train") return run_train(args);
  if (command == "eval") return run_eval(args);
  if (command == "generate") return run_generate(args);
  if (command == "serve") return run_serve(args);
  if (command == "inspect") return run_inspect(args);
  if (command == "tokenize") return run_tokenize(args);
  if (command == "import") return run_import(args);
  if (command == "export") return run_export(args);
  if (command == "bench") return run_bench(args);
  if (command == "experiment") return run_experiment(args);
  throw Error(str_cat("unknown command '", command, "'\n", top_level_help()));
}

}  // namespace gsa::cli
