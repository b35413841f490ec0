// Crash-safe checkpoints (DESIGN.md section 6): writing, finding and reading checkpoint directories.
//
// A checkpoint store ROOT (the trainer's is <output_dir>/checkpoints) holds
//   ROOT/step-000500/   model.safetensors (Hugging Face names), optimizer.safetensors (when there is optimizer
//                       state), config.pbtxt (the run's config; usable as --config), tokenizer.json (when the
//                       model came from a Hugging Face directory: gsa import), state.pbtxt (step, data
//                       generator states, the size of every other file; gsa/config/checkpoint_state.h)
//   ROOT/latest         one line: the name of the newest complete checkpoint ("step-000500")
//
// Contract (save), in this order:
//  1. every file is written into ROOT/.tmp-step-N (each through <file>.tmp, fsync, rename), state.pbtxt last,
//     the folder is fsynced, renamed to ROOT/step-N, and ROOT fsynced;
//  2. `latest` is replaced atomically (latest.tmp, fsync, rename, fsync of ROOT);
//  3. only then are older checkpoints beyond the newest `keep` (and any newer than `latest`, left by an abandoned
//     run) removed, each first renamed to ROOT/.trash-step-N so that a step-N folder is always complete.
//  So a kill -9 at any instant leaves `latest` naming a complete checkpoint, the previous or the new one (or no
//  `latest` before the first save completes), and loading never sees a half-written one. remove_stale() deletes
//  the leftovers of a killed save (.tmp-*, .trash-*, latest.tmp). Saving a step that `latest` already names is a
//  no-op; a step-N folder that `latest` does not name (a save killed between 1 and 2) is replaced.
// Contract (load): load_checkpoint_dir reads state.pbtxt, checks that every file it lists exists with the
//  recorded size, and reads them; anything missing, short or malformed throws gsa::Error naming the file.
//  resolve_checkpoint accepts a step folder, a store ROOT (follows `latest`) or an output dir holding
//  checkpoints/latest.
// Only one process may save into a store at a time (the trainer saves from world rank 0).
#pragma once

#include <cstdint>
#include <string>

#include <ATen/ATen.h>

#include "gsa/config/checkpoint_state.h"
#include "gsa/config/options.h"
#include "gsa/runtime/file_util.h"
#include "gsa/runtime/llama_model.h"
#include "gsa/runtime/safetensors.h"

namespace gsa {

struct Checkpoint {
  CheckpointState state;    // step and generator states (`files` is filled in by save and load)
  TensorMap model;          // by Hugging Face name
  TensorMap optimizer;      // optimizer state by "<param>.<slot>"; may be empty
  MetadataMap optimizer_metadata;
  std::string config_text;  // config.pbtxt
  std::string tokenizer_json;  // tokenizer.json text, or empty (none)
};

class CheckpointStore {
 public:
  // hook: sees every file operation of save() and remove_stale() (fault-injection tests).
  explicit CheckpointStore(std::string root, FileOpHook hook = {});

  const std::string& root() const { return root_; }
  // The folder name `latest` names ("step-000500"), or "" when the store has no complete checkpoint.
  std::string latest() const;
  // Deletes what a killed save left behind; creates ROOT when missing.
  void remove_stale() const;
  // Saves `checkpoint` as step-<state.step>, makes it `latest`, keeps the newest `keep` (0 = all); returns its path.
  std::string save(const Checkpoint& checkpoint, int64_t keep) const;

  static std::string step_name(int64_t step);  // "step-000500"

 private:
  void op(const char* name, const std::string& path) const;
  void prune(int64_t latest_step, int64_t keep) const;

  std::string root_;
  FileOpHook hook_;
};

// A step folder for `path`: itself when it holds state.pbtxt, else the one `latest` names in path or in
// path/checkpoints. Throws gsa::Error listing what it looked for.
std::string resolve_checkpoint(const std::string& path);
// with_optimizer false: optimizer.safetensors is checked but not read (inference needs only the model).
Checkpoint load_checkpoint_dir(const std::string& dir, bool with_optimizer = true);
// The model of the checkpoint at resolve_checkpoint(path), on `device`; its config into *options when given, with
// data.tokenizer naming the checkpoint's own tokenizer.json when it carries one (gsa import).
LlamaModel load_checkpoint(const std::string& path, at::Device device, GsaOptions* options);
// `run` with the model and gist sections of the config of the checkpoint at resolve_checkpoint(path) (gsa train
// --init-from), validated as a whole (a bad combination throws gsa::Error naming the fields).
GsaOptions with_model_of_checkpoint(const GsaOptions& run, const std::string& path);

}  // namespace gsa
