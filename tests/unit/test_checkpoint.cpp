// Checkpoint store (runtime/checkpoint.h): round trip, `latest`, keep-K pruning, stale leftovers, damaged
// checkpoints refused, and the atomicity contract under fault injection: a save killed (in a forked child, by
// _exit) before each of its file operations, k = 1..all, leaves a store that loads either the previous or the new
// checkpoint, complete and byte-identical to a clean save of it, never an error or a mix.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gsa/runtime/checkpoint.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/file_util.h"
#include "common/error_of.h"

namespace gsa {
namespace {

using gsa::test_support::error_of;

// A fresh directory per test case (ctest runs cases as separate processes, possibly in parallel).
std::string test_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string dir = std::string(GSA_BINARY_DIR) + "/test_tmp/checkpoint/" + info->test_suite_name() + "." +
                          info->name();
  remove_tree(dir);
  make_directories(dir);
  return dir;
}

// Distinct contents per step: fp32, bf16 and int64 tensors, optimizer moments, config text, generator states.
Checkpoint make_checkpoint(int64_t step) {
  Checkpoint c;
  c.state.step = step;
  c.state.generators = {{"train_task", "rng " + std::to_string(step * 7)}, {"eval_task", "rng eval"}};
  const double base = static_cast<double>(step);
  c.model["model.embed_tokens.weight"] = at::arange(24, at::kFloat).reshape({4, 6}).mul(base + 0.5);
  c.model["model.norm.weight"] = at::full({6}, base / 3.0, at::kBFloat16);
  c.model["counts"] = at::arange(5, at::kLong).add(step);
  c.optimizer["model.norm.weight.exp_avg"] = at::full({6}, base * 1e-3, at::kFloat);
  c.optimizer_metadata = {{"step", std::to_string(step)}};
  c.config_text = "train { steps: " + std::to_string(step * 10) + " }\n";
  return c;
}

void expect_tensors_equal(const TensorMap& got, const TensorMap& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (const auto& [name, tensor] : want) {
    ASSERT_EQ(got.count(name), 1u) << what << ": missing " << name;
    EXPECT_EQ(got.at(name).scalar_type(), tensor.scalar_type()) << what << " " << name;
    EXPECT_TRUE(at::equal(got.at(name), tensor)) << what << " " << name;
  }
}

void expect_checkpoint_equal(const Checkpoint& got, const Checkpoint& want) {
  EXPECT_EQ(got.state.step, want.state.step);
  EXPECT_EQ(got.state.generators, want.state.generators);
  EXPECT_EQ(got.config_text, want.config_text);
  EXPECT_EQ(got.optimizer_metadata, want.optimizer_metadata);
  expect_tensors_equal(got.model, want.model, "model");
  expect_tensors_equal(got.optimizer, want.optimizer, "optimizer");
}

// Every file of two step folders, byte for byte.
void expect_same_files(const std::string& got, const std::string& want) {
  ASSERT_EQ(list_directory(got), list_directory(want)) << got << " vs " << want;
  for (const std::string& name : list_directory(want)) {
    EXPECT_EQ(read_file(join_path(got, name)), read_file(join_path(want, name))) << name;
  }
}

TEST(Checkpoint, RoundTripAndResolve) {
  const std::string out = test_dir();
  const CheckpointStore store(join_path(out, "checkpoints"));
  store.remove_stale();
  EXPECT_EQ(store.latest(), "");
  const Checkpoint saved = make_checkpoint(500);
  const std::string dir = store.save(saved, 3);
  EXPECT_EQ(dir, join_path(store.root(), "step-000500"));
  EXPECT_EQ(store.latest(), "step-000500");
  EXPECT_EQ(read_file(join_path(store.root(), "latest")), "step-000500\n");
  EXPECT_EQ(list_directory(dir), (std::vector<std::string>{"config.pbtxt", "model.safetensors",
                                                           "optimizer.safetensors", "state.pbtxt"}));
  expect_checkpoint_equal(load_checkpoint_dir(dir), saved);
  // A step folder, a store root and an output dir all resolve to the same folder.
  EXPECT_EQ(resolve_checkpoint(dir), dir);
  EXPECT_EQ(resolve_checkpoint(store.root()), dir);
  EXPECT_EQ(resolve_checkpoint(out), dir);
  EXPECT_TRUE(load_checkpoint_dir(dir, /*with_optimizer=*/false).optimizer.empty());
  const std::string missing = error_of<std::exception>([&] { resolve_checkpoint(join_path(out, "nowhere")); });
  EXPECT_NE(missing.find("no checkpoint at '" + join_path(out, "nowhere") + "'"), std::string::npos) << missing;
  // Saving the step `latest` already names changes nothing.
  EXPECT_EQ(store.save(make_checkpoint(500), 3), dir);
  expect_checkpoint_equal(load_checkpoint_dir(dir), saved);
}

TEST(Checkpoint, KeepsTheNewestAndDropsAbandonedOnes) {
  const CheckpointStore store(test_dir());
  for (int64_t step : {1, 2, 3, 4, 5}) store.save(make_checkpoint(step * 10), 2);
  EXPECT_EQ(list_directory(store.root()), (std::vector<std::string>{"latest", "step-000040", "step-000050"}));
  // A step folder newer than `latest` (a save killed before `latest` moved) belongs to an abandoned run: a resumed
  // run saving an earlier step removes it; a folder for the step being saved is replaced.
  store.save(make_checkpoint(90), 0);
  write_file_atomic(join_path(store.root(), "latest"), "step-000050\n");
  store.save(make_checkpoint(60), 0);
  EXPECT_EQ(list_directory(store.root()),
            (std::vector<std::string>{"latest", "step-000040", "step-000050", "step-000060"}));
  rename_path(join_path(store.root(), "step-000040"), join_path(store.root(), "step-000070"));
  store.save(make_checkpoint(70), 0);
  expect_checkpoint_equal(load_checkpoint_dir(join_path(store.root(), "step-000070")), make_checkpoint(70));
}

TEST(Checkpoint, RemoveStaleDeletesLeftovers) {
  const CheckpointStore store(test_dir());
  store.save(make_checkpoint(3), 0);
  for (const char* leftover : {".tmp-step-000004", ".trash-step-000002"}) {
    make_directories(join_path(store.root(), leftover));
    write_file_atomic(join_path(join_path(store.root(), leftover), "model.safetensors"), "half");
  }
  write_file_atomic(join_path(store.root(), "latest.tmp"), "step-0");
  store.remove_stale();
  EXPECT_EQ(list_directory(store.root()), (std::vector<std::string>{"latest", "step-000003"}));
  // Without `latest`, no step folder is reachable: they are leftovers of a first save killed midway.
  ::unlink(join_path(store.root(), "latest").c_str());
  store.remove_stale();
  EXPECT_TRUE(list_directory(store.root()).empty());
}

TEST(Checkpoint, DamagedCheckpointsAreRefused) {
  const CheckpointStore store(test_dir());
  const std::string dir = store.save(make_checkpoint(7), 0);
  const std::string model = join_path(dir, "model.safetensors");
  const std::string bytes = read_file(model);
  write_file_atomic(model, bytes.substr(0, bytes.size() - 4));
  std::string error = error_of<std::exception>([&] { load_checkpoint_dir(dir); });
  EXPECT_NE(error.find(model + ": " + std::to_string(bytes.size() - 4) + " bytes, but state.pbtxt recorded " +
                       std::to_string(bytes.size())),
            std::string::npos)
      << error;
  ::unlink(model.c_str());
  error = error_of<std::exception>([&] { load_checkpoint_dir(dir); });
  EXPECT_NE(error.find(model + ": missing"), std::string::npos) << error;
  ::unlink(join_path(dir, "state.pbtxt").c_str());
  error = error_of<std::exception>([&] { load_checkpoint_dir(dir); });
  EXPECT_NE(error.find("is not a checkpoint folder (no state.pbtxt)"), std::string::npos) << error;
  write_file_atomic(join_path(store.root(), "latest"), "step-000099\n");
  error = error_of<std::exception>([&] { store.latest(); });
  EXPECT_NE(error.find("names 'step-000099', which is not a folder"), std::string::npos) << error;
  write_file_atomic(join_path(store.root(), "latest"), "garbage\n");
  error = error_of<std::exception>([&] { resolve_checkpoint(store.root()); });
  EXPECT_NE(error.find("expected one line 'step-<digits>', got 'garbage'"), std::string::npos) << error;
}

// The file operations of one save, in order, as "op path".
std::vector<std::string> save_operations(const std::string& root, const Checkpoint* previous, const Checkpoint& next) {
  remove_tree(root);
  if (previous != nullptr) CheckpointStore(root).save(*previous, 1);
  std::vector<std::string> ops;
  CheckpointStore(root, [&](const std::string& op, const std::string& path) { ops.push_back(op + " " + path); })
      .save(next, 1);
  return ops;
}

// For k = 1..all: a child process saves `next` over a store holding `previous` (or nothing) and dies just before
// file operation k. The store must then hold previous or next, complete and identical to a clean save, and a
// later run (remove_stale, then save) must work.
void kill_at_every_operation(const std::string& base, const Checkpoint* previous) {
  const Checkpoint next = make_checkpoint(20);
  const std::string reference = join_path(base, "reference");
  const std::vector<std::string> ops = save_operations(join_path(base, "count"), previous, next);
  ASSERT_GT(ops.size(), 20u);
  const CheckpointStore clean(reference);
  const std::string clean_previous = previous ? clean.save(*previous, 0) : "";
  const std::string clean_next = clean.save(next, 0);
  bool seen_next = false;
  for (size_t k = 1; k <= ops.size(); ++k) {
    SCOPED_TRACE("killed before operation " + std::to_string(k) + ": " + ops[k - 1]);
    const std::string root = join_path(base, "store");
    remove_tree(root);
    if (previous != nullptr) CheckpointStore(root).save(*previous, 1);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      size_t count = 0;
      CheckpointStore(root, [&](const std::string&, const std::string&) {
        if (++count == k) ::_exit(0);
      }).save(next, 1);
      ::_exit(3);  // the save finished without reaching operation k
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;

    const CheckpointStore store(root);
    if (store.latest().empty()) {
      ASSERT_EQ(previous, nullptr) << "the previous checkpoint is gone";
      ASSERT_FALSE(seen_next) << "the new checkpoint vanished again";
    } else {
      const std::string dir = resolve_checkpoint(root);
      const Checkpoint loaded = load_checkpoint_dir(dir);
      const bool is_next = loaded.state.step == next.state.step;
      ASSERT_TRUE(is_next || previous != nullptr) << "loaded step " << loaded.state.step;
      ASSERT_FALSE(seen_next && !is_next) << "went back to the previous checkpoint";
      seen_next = seen_next || is_next;
      expect_checkpoint_equal(loaded, is_next ? next : *previous);
      expect_same_files(dir, is_next ? clean_next : clean_previous);
    }
    // The next run starts: leftovers go, and saving works and loads back.
    store.remove_stale();
    for (const std::string& name : list_directory(root)) EXPECT_NE(name[0], '.') << name << " left behind";
    store.save(next, 1);
    expect_same_files(resolve_checkpoint(root), clean_next);
  }
  EXPECT_TRUE(seen_next);
}

TEST(CheckpointFaults, KillAtEveryFileOperationKeepsThePreviousOrTheNew) {
  const Checkpoint previous = make_checkpoint(10);
  kill_at_every_operation(test_dir(), &previous);
}

TEST(CheckpointFaults, KillDuringTheFirstSaveLeavesNothingOrTheNew) {
  kill_at_every_operation(test_dir(), nullptr);
}

}  // namespace
}  // namespace gsa
