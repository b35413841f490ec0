#include "gist_flags.h"

#include "gsa/runtime/error.h"

namespace gsa::cli {

GistOptions read_gist_flags(Flags& flags, int64_t default_chunk, int64_t default_levels) {
  const GistOptions defaults;
  GistOptions g;
  auto read = [&](const char* name, int64_t fallback, int64_t lo, int64_t hi) {
    const int64_t value = flags.get_int(name, fallback);
    GSA_CHECK(value >= lo && value <= hi, "gsa ", flags.command_name(), ": --", name, " must be in [", lo, ", ", hi,
              "], got ", value);
    return value;
  };
  constexpr int64_t kMax = int64_t{1} << 40;
  g.chunk = read("chunk", default_chunk, 1, kMax);
  g.fanout = read("fanout", defaults.fanout, 2, kMax);
  g.levels = read("levels", default_levels, 1, 4);
  g.sink = read("sink", defaults.sink, 0, kMax);
  g.prev_chunks = read("prev-chunks", defaults.prev_chunks, 0, kMax);
  return g;
}

}  // namespace gsa::cli
