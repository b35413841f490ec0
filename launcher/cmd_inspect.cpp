// gsa inspect: prints the gist layout of one document and its attention mask, to see the method's rules.
//
//   gsa inspect layout --raw-tokens N --chunk C0 [--sink S] [--fanout C1] [--levels L] [--prev-chunks P]
//     one line, one character per token: '.' raw, '0'..'3' a gist of that level
//   gsa inspect mask   (same flags)
//     one line per query position q with q+1 characters: '1' where q attends to key k, '.' where it does not
//
// One document whose gisted context is N raw tokens, no raw suffix, no word-aware shift.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "cli_flags.h"
#include "commands.h"
#include "gsa/config/options.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/gist_layout.h"
#include "gsa/runtime/mask_predicate.h"

namespace gsa::cli {
namespace {

const char* const kInspectHelp =
    "usage: gsa inspect layout|mask --raw-tokens N --chunk C0 [flags]\n"
    "\n"
    "  layout   one line, one character per token: '.' raw token, '0'..'3' gist of that level\n"
    "  mask     one line per query position q with q+1 characters: '1' q attends to key k, '.' it does not\n"
    "\n"
    "flags (the word layout|mask comes first, then the flags):\n"
    "  --raw-tokens N    raw tokens of the gisted context (required; layout: 0..16777216, mask: 0..16384, as\n"
    "                    mask prints about N^2 / 2 characters)\n"
    "  --chunk C0        raw tokens per level-0 gist (required, >= 1)\n"
    "  --sink S          raw tokens at the start that are never chunked (default 3, >= 0)\n"
    "  --fanout C1       level-(l-1) gists per level-l gist (default 4, >= 2)\n"
    "  --levels L        gist levels (default 1, 1..4)\n"
    "  --prev-chunks P   previous chunks visible in the local window (default 1, >= 0)\n"
    "\n"
    "example: gsa inspect layout --raw-tokens 15 --sink 3 --chunk 4 --fanout 4 --levels 1\n"
    "         .......0....0....0\n";

int64_t checked(Flags& flags, const std::string& name, int64_t value, int64_t lo, int64_t hi) {
  GSA_CHECK(value >= lo && value <= hi, "gsa ", flags.command_name(), ": --", name, " must be ",
            hi == INT64_MAX ? str_cat(">= ", lo) : str_cat(lo, "..", hi), ", got ", value);
  return value;
}

// Most raw tokens each view draws: a layout is one character a token, a mask about N^2 / 2.
constexpr int64_t kMaxLayoutTokens = int64_t{1} << 24, kMaxMaskTokens = int64_t{1} << 14;

GistLayout layout_from_flags(Flags& flags, int64_t max_raw_tokens) {
  const int64_t raw_tokens = checked(flags, "raw-tokens", flags.require_int("raw-tokens"), 0, max_raw_tokens);
  GistOptions options;
  options.chunk = checked(flags, "chunk", flags.require_int("chunk"), 1, INT64_MAX);
  options.sink = checked(flags, "sink", flags.get_int("sink", options.sink), 0, INT64_MAX);
  options.fanout = checked(flags, "fanout", flags.get_int("fanout", options.fanout), 2, INT64_MAX);
  options.levels = checked(flags, "levels", flags.get_int("levels", options.levels), 1, 4);
  options.prev_chunks = checked(flags, "prev-chunks", flags.get_int("prev-chunks", options.prev_chunks), 0,
                                INT64_MAX);
  options.word_aware = false;
  flags.finish();

  Document doc;
  doc.context.reserve(static_cast<size_t>(raw_tokens));
  for (int64_t i = 0; i < raw_tokens; ++i) doc.context.push_back('a' + i % 26);
  return build_layout({doc}, options);
}

}  // namespace

int run_inspect(const Args& args) {
  const std::string what = Flags::leading_word(args);
  Flags flags(args, what.empty() ? "inspect" : "inspect " + what);
  if (flags.help()) {
    std::fputs(kInspectHelp, stdout);
    return 0;
  }
  GSA_CHECK(flags.positional().size() == 1 && (what == "layout" || what == "mask"),
            "expected 'gsa inspect layout' or 'gsa inspect mask' (positional words before flags)\n", kInspectHelp);

  const GistLayout layout = layout_from_flags(flags, what == "layout" ? kMaxLayoutTokens : kMaxMaskTokens);
  if (what == "layout") {
    std::printf("%s\n", render_layout(layout).c_str());
    return 0;
  }
  std::string line;
  for (int64_t q = 0; q < layout.size(); ++q) {
    line.assign(static_cast<size_t>(q + 1), '.');
    for (int64_t k = 0; k <= q; ++k) {
      if (gist_mask_allowed(layout, q, k)) line[static_cast<size_t>(k)] = '1';
    }
    std::fputs(line.c_str(), stdout);
    std::fputc('\n', stdout);
  }
  return 0;
}

}  // namespace gsa::cli
