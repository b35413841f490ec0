// The gist-layout flags the benchmarks share: --chunk --fanout --levels --sink --prev-chunks, read with the
// caller's chunk and levels defaults (the others: GistOptions') and checked (chunk >= 1, fanout >= 2, levels 1..4, sink
// >= 0, prev-chunks >= 0), each bad value an error naming its flag.
#pragma once

#include <cstdint>

#include "cli_flags.h"
#include "gsa/config/options.h"

namespace gsa::cli {

GistOptions read_gist_flags(Flags& flags, int64_t default_chunk, int64_t default_levels);

}  // namespace gsa::cli
