// state.pbtxt codec (gsa/config/checkpoint_state.h): round trip of awkward strings, and clear errors.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "gsa/config/checkpoint_state.h"
#include "gsa/config/config_loader.h"

namespace gsa {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(CheckpointState, RoundTrips) {
  CheckpointState state;
  state.step = 123456789012LL;
  state.generators = {{"train_task", "1 2 3\n\"quoted\" \\ tab\t"}, {"eval_task", ""}};
  state.files = {{"model.safetensors", 4096}, {"config.pbtxt", 0}};
  const std::string text = checkpoint_state_to_text(state);
  const CheckpointState back = parse_checkpoint_state(text, "state.pbtxt");
  EXPECT_EQ(back.step, state.step);
  EXPECT_EQ(back.generators, state.generators);
  EXPECT_EQ(back.files, state.files);
  EXPECT_EQ(checkpoint_state_to_text(back), text);
}

TEST(CheckpointState, BadTextNamesTheProblem) {
  EXPECT_EQ(error_of([] { parse_checkpoint_state("", "d/state.pbtxt"); }), "d/state.pbtxt: missing field step");
  EXPECT_EQ(error_of([] { parse_checkpoint_state("step: -1", "s"); }), "s: step = -1 is negative");
  const std::string unknown = error_of([] { parse_checkpoint_state("step: 1\nbogus: 2\n", "s"); });
  EXPECT_EQ(unknown.rfind("s:2:", 0), 0u) << unknown;
  EXPECT_NE(unknown.find("bogus"), std::string::npos) << unknown;
  EXPECT_EQ(error_of([] {
              parse_checkpoint_state("step: 1 files { name: \"a\" bytes: 1 } files { name: \"a\" bytes: 2 }", "s");
            }),
            "s: file 'a' appears twice");
  EXPECT_EQ(error_of([] { parse_checkpoint_state("step: 1 files { name: \"a\" bytes: -5 }", "s"); }),
            "s: file 'a' has a negative size");
  EXPECT_EQ(error_of([] {
              parse_checkpoint_state("step: 1 generators { name: \"g\" } generators { name: \"g\" }", "s");
            }),
            "s: generator 'g' appears twice");
}

}  // namespace
}  // namespace gsa
