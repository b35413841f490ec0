// Private to gsa_runtime: what the plain decode loop (run_decode_loop) and the loop ahead of the host
// (generation_ahead.cpp) share, so both end on the same token.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "gsa/runtime/generation.h"

namespace gsa::detail {

// Whether generation ends after `token`, the produced-th token chosen: a stop token, max_new_tokens reached, or no
// room for another position (room: whether the layout, which holds the tokens before this one, may grow).
inline bool decode_loop_ends(const SamplingOptions& sampling, int64_t token, int64_t produced, bool room) {
  const bool stop =
      std::find(sampling.stop_tokens.begin(), sampling.stop_tokens.end(), token) != sampling.stop_tokens.end();
  return stop || produced == sampling.max_new_tokens || !room;
}

inline double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace gsa::detail
