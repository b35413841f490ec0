// The text manifest of a checkpoint (state.pbtxt; schema configs/proto/checkpoint_state.proto): the step, the
// data generators' states and the size of every other file of the checkpoint directory.
//
// Contract: checkpoint_state_to_text writes every field; parse_checkpoint_state(checkpoint_state_to_text(s), ..)
// returns s. A text that does not parse, lacks `step`, has a negative step or size, or repeats a generator or
// file name throws ConfigError naming `source_name` (and LINE:COLUMN for parse errors). No protobuf types here.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace gsa {

struct CheckpointState {
  int64_t step = 0;                                // optimizer steps completed
  std::map<std::string, std::string> generators;   // generator name -> its serialised state
  std::map<std::string, int64_t> files;            // file name -> size in bytes
};

std::string checkpoint_state_to_text(const CheckpointState& state);
CheckpointState parse_checkpoint_state(const std::string& text, const std::string& source_name);

}  // namespace gsa
