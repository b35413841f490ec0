// One engine step as every rank of an sp group executes it (the serving control plane): rank 0's scheduler
// decides, broadcasts the message over the group's Communicator, and every rank applies it in lockstep.
//
// Contract:
// - A step applies, in this order: remove sequences, add sequences (their token ids; every rank builds the same
//   layout), at most the listed prefill chunks, then one decode step over every (id, token) in `decode` (the
//   tokens rank 0 sampled from the previous step's logits). shutdown ends the engine loop on every rank.
// - encode/decode round-trip exactly (a flat int64 array); broadcast_step sends rank 0's message to every rank of
//   the group (two broadcasts: the length, then the array) and returns it. Same call order on all ranks.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "gsa/parallel/communicator.h"

namespace gsa::serve {

struct StepMessage {
  struct Add {
    int64_t id = 0;
    std::vector<int64_t> context;  // gisted token ids
    std::vector<int64_t> suffix;   // raw token ids
    int64_t max_positions = 0;     // prompt + the most tokens it may generate
  };
  struct Prefill {
    int64_t id = 0;
    int64_t count = 0;  // prompt positions to run (a chunk)
  };
  bool shutdown = false;
  std::vector<int64_t> remove;
  std::vector<Add> add;
  std::vector<Prefill> prefill;
  std::vector<std::pair<int64_t, int64_t>> decode;  // (id, token to append)

  bool has_work() const { return shutdown || !remove.empty() || !add.empty() || !prefill.empty() || !decode.empty(); }
};

std::vector<int64_t> encode_step(const StepMessage& message);
StepMessage decode_step(const std::vector<int64_t>& flat);  // throws gsa::Error on a malformed array

// Rank 0 passes its message; the other ranks' argument is ignored. Every rank returns rank 0's message.
StepMessage broadcast_step(const StepMessage& message, Communicator& group);

}  // namespace gsa::serve
