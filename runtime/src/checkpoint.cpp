// Checkpoint directories; the contract and the save protocol are in gsa/runtime/checkpoint.h.
#include "gsa/runtime/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <utility>
#include <vector>

#include "gsa/config/config_loader.h"
#include "gsa/runtime/error.h"

namespace gsa {
namespace {

constexpr char kModelFile[] = "model.safetensors";
constexpr char kOptimizerFile[] = "optimizer.safetensors";
constexpr char kConfigFile[] = "config.pbtxt";
constexpr char kStateFile[] = "state.pbtxt";
constexpr char kTokenizerFile[] = "tokenizer.json";
constexpr char kLatestFile[] = "latest";
constexpr char kStepPrefix[] = "step-";
constexpr char kTmpPrefix[] = ".tmp-";
constexpr char kTrashPrefix[] = ".trash-";

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

// The step of a folder named "step-<digits>", or -1 for any other name.
int64_t step_of(const std::string& name) {
  if (!starts_with(name, kStepPrefix) || name.size() == sizeof(kStepPrefix) - 1 || name.size() > 24) return -1;
  int64_t step = 0;
  for (size_t i = sizeof(kStepPrefix) - 1; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

}  // namespace

CheckpointStore::CheckpointStore(std::string root, FileOpHook hook) : root_(std::move(root)), hook_(std::move(hook)) {}

std::string CheckpointStore::step_name(int64_t step) {
  GSA_CHECK(step >= 0, "checkpoint step ", step, " is negative");
  char name[32];
  std::snprintf(name, sizeof(name), "%s%06lld", kStepPrefix, static_cast<long long>(step));
  return name;
}

void CheckpointStore::op(const char* name, const std::string& path) const {
  if (hook_) hook_(name, path);
}

std::string CheckpointStore::latest() const {
  const std::string pointer = join_path(root_, kLatestFile);
  if (!path_exists(pointer)) return "";
  std::string name = read_file(pointer);
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  GSA_CHECK(step_of(name) >= 0, pointer, ": expected one line 'step-<digits>', got '", name, "'");
  GSA_CHECK(is_directory(join_path(root_, name)), pointer, " names '", name, "', which is not a folder of ", root_);
  return name;
}

void CheckpointStore::remove_stale() const {
  make_directories(root_);
  const bool has_latest = !latest().empty();
  for (const std::string& name : list_directory(root_)) {
    // Without `latest` no step folder is reachable: a first save was killed before it completed.
    const bool stale = starts_with(name, kTmpPrefix) || starts_with(name, kTrashPrefix) ||
                       name == std::string(kLatestFile) + ".tmp" || (!has_latest && step_of(name) >= 0);
    if (!stale) continue;
    op("remove", join_path(root_, name));
    remove_tree(join_path(root_, name));
  }
}

std::string CheckpointStore::save(const Checkpoint& checkpoint, int64_t keep) const {
  const std::string name = step_name(checkpoint.state.step);
  const std::string final_dir = join_path(root_, name);
  make_directories(root_);
  if (latest() == name) return final_dir;

  // 1. Everything into .tmp-step-N, then one rename makes it visible.
  const std::string tmp = join_path(root_, kTmpPrefix + name);
  op("remove", tmp);
  remove_tree(tmp);
  op("mkdir", tmp);
  make_directories(tmp);
  CheckpointState state = checkpoint.state;
  state.files.clear();
  auto record = [&](const char* file) { state.files[file] = file_size(join_path(tmp, file)); };
  save_safetensors(join_path(tmp, kModelFile), checkpoint.model, {{"format", "pt"}, {"producer", "gsa"}}, hook_);
  record(kModelFile);
  if (!checkpoint.optimizer.empty()) {
    save_safetensors(join_path(tmp, kOptimizerFile), checkpoint.optimizer, checkpoint.optimizer_metadata, hook_);
    record(kOptimizerFile);
  }
  write_file_atomic(join_path(tmp, kConfigFile), checkpoint.config_text, hook_);
  record(kConfigFile);
  if (!checkpoint.tokenizer_json.empty()) {
    write_file_atomic(join_path(tmp, kTokenizerFile), checkpoint.tokenizer_json, hook_);
    record(kTokenizerFile);
  }
  write_file_atomic(join_path(tmp, kStateFile), checkpoint_state_to_text(state), hook_);
  op("fsync-dir", tmp);
  sync_directory(tmp);
  if (path_exists(final_dir)) {  // left by a save killed before `latest` named it: nothing refers to it
    const std::string trash = join_path(root_, kTrashPrefix + name);
    op("remove", trash);
    remove_tree(trash);
    op("rename", trash);
    rename_path(final_dir, trash);
    op("remove", trash);
    remove_tree(trash);
  }
  op("rename", final_dir);
  rename_path(tmp, final_dir);
  op("fsync-dir", root_);
  sync_directory(root_);

  // 2. The new checkpoint becomes `latest`.
  write_file_atomic(join_path(root_, kLatestFile), name + "\n", hook_);
  op("fsync-dir", root_);
  sync_directory(root_);

  // 3. Only now may older ones go.
  prune(checkpoint.state.step, keep);
  return final_dir;
}

void CheckpointStore::prune(int64_t latest_step, int64_t keep) const {
  std::vector<std::pair<int64_t, std::string>> older;  // (step, name) at or below latest_step
  std::vector<std::string> doomed;
  for (const std::string& name : list_directory(root_)) {
    const int64_t step = step_of(name);
    if (step < 0) continue;
    if (step > latest_step) {
      doomed.push_back(name);  // an abandoned run's; `latest` never names it again
    } else {
      older.emplace_back(step, name);
    }
  }
  std::sort(older.begin(), older.end());
  if (keep > 0 && static_cast<int64_t>(older.size()) > keep) {
    for (size_t i = 0; i + keep < older.size(); ++i) doomed.push_back(older[i].second);
  }
  for (const std::string& name : doomed) {
    const std::string trash = join_path(root_, kTrashPrefix + name);
    op("rename", trash);
    rename_path(join_path(root_, name), trash);
    op("remove", trash);
    remove_tree(trash);
  }
}

std::string resolve_checkpoint(const std::string& path) {
  if (path_exists(join_path(path, kStateFile))) return path;
  for (const std::string& root : {path, join_path(path, "checkpoints")}) {
    if (path_exists(join_path(root, kLatestFile))) return join_path(root, CheckpointStore(root).latest());
  }
  throw Error(str_cat("no checkpoint at '", path, "': looked for ", join_path(path, kStateFile), ", ",
                      join_path(path, kLatestFile), " and ", join_path(join_path(path, "checkpoints"), kLatestFile)));
}

Checkpoint load_checkpoint_dir(const std::string& dir, bool with_optimizer) {
  const std::string state_path = join_path(dir, kStateFile);
  GSA_CHECK(path_exists(state_path), "'", dir, "' is not a checkpoint folder (no ", kStateFile, ")");
  Checkpoint checkpoint;
  checkpoint.state = parse_checkpoint_state(read_file(state_path), state_path);
  for (const char* required : {kModelFile, kConfigFile}) {
    GSA_CHECK(checkpoint.state.files.count(required) == 1, state_path, ": does not list ", required);
  }
  for (const auto& [file, bytes] : checkpoint.state.files) {
    const std::string path = join_path(dir, file);
    GSA_CHECK(path_exists(path), path, ": missing, but ", kStateFile, " lists it (damaged checkpoint)");
    const int64_t size = file_size(path);
    GSA_CHECK(size == bytes, path, ": ", size, " bytes, but ", kStateFile, " recorded ", bytes,
              " (damaged checkpoint)");
  }
  checkpoint.model = load_safetensors(join_path(dir, kModelFile));
  if (with_optimizer && checkpoint.state.files.count(kOptimizerFile) == 1) {
    checkpoint.optimizer = load_safetensors(join_path(dir, kOptimizerFile), &checkpoint.optimizer_metadata);
  }
  checkpoint.config_text = read_file(join_path(dir, kConfigFile));
  if (checkpoint.state.files.count(kTokenizerFile) == 1) {
    checkpoint.tokenizer_json = read_file(join_path(dir, kTokenizerFile));
  }
  return checkpoint;
}

LlamaModel load_checkpoint(const std::string& path, at::Device device, GsaOptions* options) {
  const std::string dir = resolve_checkpoint(path);
  const Checkpoint checkpoint = load_checkpoint_dir(dir, /*with_optimizer=*/false);
  GsaOptions loaded = load_config_text(checkpoint.config_text, join_path(dir, kConfigFile));
  // A checkpoint that carries its tokenizer (gsa import) serves and generates with that copy.
  if (!checkpoint.tokenizer_json.empty()) loaded.data.tokenizer = join_path(dir, kTokenizerFile);
  LlamaModel model = LlamaModel::from_tensors(loaded.model, checkpoint.model, device);
  if (options != nullptr) *options = loaded;
  return model;
}

GsaOptions with_model_of_checkpoint(const GsaOptions& run, const std::string& path) {
  const std::string dir = resolve_checkpoint(path);
  const std::string config_path = join_path(dir, kConfigFile);
  const GsaOptions theirs = load_config_text(read_file(config_path), config_path);
  GsaOptions out = run;
  out.model = theirs.model;
  out.gist = theirs.gist;
  return load_config_text(options_to_text(out), str_cat("the run's config with the model and gist of ", config_path));
}

}  // namespace gsa
