// gsa tokenize: text on stdin -> ids on stdout with a Hugging Face tokenizer.json (HfTokenizer), or back with
// --decode. Both directions read all of stdin as it is (a trailing newline is text too: use printf or echo -n).
#include <cstdio>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "cli_flags.h"
#include "commands.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/hf_tokenizer.h"

namespace gsa::cli {
namespace {

constexpr const char* kHelp =
    "usage: gsa tokenize --tokenizer FILE [--decode] [--gist-levels L]  < input\n"
    "\n"
    "  --tokenizer FILE   a Hugging Face tokenizer.json (byte-level BPE with the Llama-3 or Qwen2 pre-tokenizer);\n"
    "                     a tokenizer_config.json beside it names BOS/EOS\n"
    "  --decode           read ids (whitespace-separated) on stdin and print their text, with nothing added\n"
    "  --gist-levels L    gist tokens to provide, 1..4 (default 3: <gist> <Gist> <MGist>; 4 adds <gist3>)\n"
    "\n"
    "Without --decode: reads stdin as text and prints its ids on one line, separated by spaces. No BOS/EOS is\n"
    "added; gist names in the text (<gist>, <Gist>, <MGist>) and the file's special tokens become their ids.\n"
    "\n"
    "example: printf 'Hello world' | gsa tokenize --tokenizer tokenizer.json\n"
    "         printf '9906 1917' | gsa tokenize --tokenizer tokenizer.json --decode\n";

// The ids of a whitespace-separated list; anything else throws naming the word and its position.
std::vector<int64_t> parse_ids(const std::string& text) {
  std::istringstream in(text);
  std::vector<int64_t> ids;
  for (std::string word; in >> word;) {
    size_t used = 0;
    int64_t id = -1;
    try {
      id = std::stoll(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    GSA_CHECK(used == word.size() && !word.empty(), "gsa tokenize --decode: '", word, "' (word ", ids.size() + 1,
              " on stdin) is not an integer id");
    ids.push_back(id);
  }
  return ids;
}

}  // namespace

int run_tokenize(const Args& args) {
  Flags flags(args, "tokenize");
  if (flags.help()) {
    std::cout << kHelp;
    return 0;
  }
  const std::string path = flags.require_string("tokenizer");
  const bool decode = flags.get_bool("decode", false);
  HfTokenizerOptions options;
  options.gist_levels = flags.get_int("gist-levels", options.gist_levels);
  GSA_CHECK(flags.positional().empty(), "gsa tokenize takes no positional arguments (input comes on stdin)\n",
            kHelp);
  flags.finish();

  const HfTokenizer tokenizer(path, options);
  const std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  if (decode) {
    std::cout << tokenizer.decode(parse_ids(input));
    return 0;
  }
  const std::vector<int64_t> ids = tokenizer.encode(input);
  std::string line;
  for (int64_t id : ids) line += (line.empty() ? "" : " ") + std::to_string(id);
  std::cout << line << "\n";
  return 0;
}

}  // namespace gsa::cli
