// gsa import / gsa export: Hugging Face Llama / Qwen2 folders in and out of gsa checkpoints
// (runtime/include/gsa/runtime/hf_checkpoint.h has the contract).
#include <cstdio>
#include <string>

#include "cli_flags.h"
#include "commands.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/hf_checkpoint.h"

namespace gsa::cli {
namespace {

constexpr const char* kImportHelp =
    "usage: gsa import --hf DIR --out CKPT [--levels L] [--chunk C0] [--fanout C1] [--sink S]\n"
    "                  [--prev-chunks P] [--word-aware] [--dtype float32|bfloat16]\n"
    "\n"
    "Reads a Hugging Face LlamaForCausalLM or Qwen2ForCausalLM folder (config.json, model.safetensors or shards\n"
    "with model.safetensors.index.json, tokenizer.json), adds the gist tokens <gist> <Gist> <MGist> (embedding and\n"
    "lm_head rows = the mean of the pretrained rows) and writes a gsa checkpoint store CKPT (CKPT/step-000000,\n"
    "CKPT/latest) with the tokenizer copied in; use it with gsa train --init-from CKPT or gsa export.\n"
    "\n"
    "  --hf DIR          the Hugging Face model folder\n"
    "  --out CKPT        the checkpoint folder to create (must not exist or be empty)\n"
    "  --levels L        gist levels, 1..4 (default 1)        --chunk C0        raw tokens per gist (default 8)\n"
    "  --fanout C1       gists per higher gist (default 4)    --sink S          raw tokens never chunked (default 3)\n"
    "  --prev-chunks P   previous chunks visible (default 1)  --word-aware      move gists to word starts\n"
    "  --dtype D         float32 or bfloat16 (default: bfloat16 when every weight is BF16, else float32)\n"
    "\n"
    "example: gsa import --hf Llama-3.2-1B --out llama-gsa --levels 2 --chunk 4 --fanout 4\n";

constexpr const char* kExportHelp =
    "usage: gsa export --checkpoint CKPT --out DIR [--max-shard-bytes N] [--tokenizer FILE]\n"
    "\n"
    "Writes an imported (or trained-from-imported) checkpoint as a folder transformers loads: config.json, the\n"
    "weights as model.safetensors or shards with model.safetensors.index.json, tokenizer.json with the gist tokens\n"
    "as special tokens, tokenizer_config.json.\n"
    "\n"
    "  --checkpoint CKPT     a step folder, a checkpoint store or a training output dir (its latest checkpoint)\n"
    "  --out DIR             the folder to create (must not exist or be empty)\n"
    "  --max-shard-bytes N   most bytes per weight shard (default 5368709120 = 5 GiB)\n"
    "  --tokenizer FILE      the tokenizer.json to use when the checkpoint holds none (e.g. after gsa train)\n";

DType parse_dtype(const std::string& text) {
  if (text == "float32") return DType::kFloat32;
  if (text == "bfloat16") return DType::kBFloat16;
  throw Error(str_cat("gsa import: --dtype must be float32 or bfloat16, got '", text, "'"));
}

int64_t at_least(const char* command, const char* flag, int64_t value, int64_t lo) {
  GSA_CHECK(value >= lo, "gsa ", command, ": --", flag, " must be >= ", lo, ", got ", value);
  return value;
}

}  // namespace

int run_import(const Args& args) {
  Flags flags(args, "import");
  if (flags.help()) {
    std::fputs(kImportHelp, stdout);
    return 0;
  }
  const std::string dir = flags.require_string("hf");
  const std::string out = flags.require_string("out");
  HfImportOptions options;
  GistOptions& g = options.gist;
  g.levels = flags.get_int("levels", g.levels);
  GSA_CHECK(g.levels >= 1 && g.levels <= 4, "gsa import: --levels must be 1..4, got ", g.levels);
  g.chunk = at_least("import", "chunk", flags.get_int("chunk", g.chunk), 1);
  g.fanout = at_least("import", "fanout", flags.get_int("fanout", g.fanout), 2);
  g.sink = at_least("import", "sink", flags.get_int("sink", g.sink), 0);
  g.prev_chunks = at_least("import", "prev-chunks", flags.get_int("prev-chunks", g.prev_chunks), 0);
  g.word_aware = flags.get_bool("word-aware", g.word_aware);
  if (flags.has("dtype")) options.dtype = parse_dtype(flags.get_string("dtype", ""));
  GSA_CHECK(flags.positional().empty(), "gsa import takes no positional arguments\n", kImportHelp);
  flags.finish();

  const std::string step = import_hf_model(dir, out, options);
  std::printf("gsa import: %s -> %s (gist levels %lld, chunk %lld, fanout %lld, sink %lld, prev_chunks %lld)\n",
              dir.c_str(), step.c_str(), static_cast<long long>(g.levels), static_cast<long long>(g.chunk),
              static_cast<long long>(g.fanout), static_cast<long long>(g.sink), static_cast<long long>(g.prev_chunks));
  return 0;
}

int run_export(const Args& args) {
  Flags flags(args, "export");
  if (flags.help()) {
    std::fputs(kExportHelp, stdout);
    return 0;
  }
  const std::string checkpoint = flags.require_string("checkpoint");
  const std::string out = flags.require_string("out");
  HfExportOptions options;
  options.max_shard_bytes =
      at_least("export", "max-shard-bytes", flags.get_int("max-shard-bytes", options.max_shard_bytes), 1);
  options.tokenizer_path = flags.get_string("tokenizer", "");
  GSA_CHECK(flags.positional().empty(), "gsa export takes no positional arguments\n", kExportHelp);
  flags.finish();

  export_hf_model(checkpoint, out, options);
  std::printf("gsa export: %s -> %s\n", checkpoint.c_str(), out.c_str());
  return 0;
}

}  // namespace gsa::cli
