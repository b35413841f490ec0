// The scaling spec (configs/include/gsa/config/scale_spec.h): parsing, resolved defaults and paths, the grid of
// points it expands to (order, ids, weak scaling's row length), the ready specs, and bad specs, each with an
// error that names the file position or the field path. Oracle: the values written in the spec texts here.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gsa/config/config_loader.h"
#include "gsa/config/scale_spec.h"

namespace gsa {
namespace {

const std::string kConfigs = std::string(GSA_SOURCE_DIR) + "/configs";

std::string error_of(const std::string& text) {
  try {
    load_scale_spec_text(text, "spec.pbtxt", "/base");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(ScaleSpec, ParsesResolvesAndExpandsInSpecOrder) {
  const ScaleSpec spec = load_scale_spec_text(R"(
    name: "t"
    config: "model.pbtxt"
    set: "model.num_layers=1"
    ranks: [1, 2]
    repeats: 2
    launch { hostfile: "/abs/hosts" oversubscribe: true }
    series { name: "s" kind: STRONG tokens: [100, 200] placement: [SECTIONS, WORK, MEASURED] }
    series { name: "w" kind: WEAK tokens: [50] ranks: [2, 4] }
    series { name: "d" kind: SERVE tokens: [300] decode_tokens: 5 }
  )", "spec.pbtxt", "/base");
  EXPECT_EQ(spec.name, "t");
  EXPECT_EQ(spec.config, "/base/model.pbtxt");
  EXPECT_EQ(spec.overrides, std::vector<std::string>{"model.num_layers=1"});
  EXPECT_EQ(spec.warmup, 1);  // the schema's defaults
  EXPECT_EQ(spec.repeats, 2);
  EXPECT_EQ(spec.suffix, 16);
  EXPECT_EQ(spec.launch.backend, "mpi");
  EXPECT_EQ(spec.launch.hostfile, "/abs/hosts");
  EXPECT_EQ(spec.launch.gpus_per_node, -1);
  EXPECT_TRUE(spec.launch.oversubscribe);
  EXPECT_EQ(spec.launch.timeout_s, 600);

  const std::vector<ScalePoint> points = expand_scale_points(spec);
  std::vector<std::string> ids;
  for (const ScalePoint& p : points) ids.push_back(p.id);
  // 1 rank: one shard, so the WORK and MEASURED points of 1 rank are the SECTIONS one (not listed thrice).
  EXPECT_EQ(ids, (std::vector<std::string>{"s-r1-t100", "s-r1-t200", "s-r2-t100", "s-r2-t100-work",
                                           "s-r2-t100-measured", "s-r2-t200", "s-r2-t200-work", "s-r2-t200-measured",
                                           "w-r2-t50", "w-r4-t50", "d-r1-t300", "d-r2-t300"}));
  EXPECT_EQ(points[9].tokens, 200);  // weak: 50 per rank x 4 ranks
  EXPECT_EQ(points[9].kind, ScaleKind::kWeak);
  EXPECT_EQ(points[11].kind, ScaleKind::kServe);
  EXPECT_EQ(points[11].decode_tokens, 5);
  EXPECT_EQ(points[3].placement, ScalePlacement::kWork);
  EXPECT_EQ(points[4].placement, ScalePlacement::kMeasured);
  EXPECT_STREQ(scale_placement_name(points[4].placement), "measured");
}

TEST(ScaleSpec, TheReadySpecsLoad) {
  const ScaleSpec cpu = load_scale_spec(kConfigs + "/scale/cpu.pbtxt");
  EXPECT_EQ(cpu.config, kConfigs + "/scale/../tiny-2level.pbtxt");  // relative to the spec's folder
  EXPECT_EQ(cpu.launch.backend, "mpi");
  const ScaleSpec gpu = load_scale_spec(kConfigs + "/scale/gpu.pbtxt");
  EXPECT_EQ(gpu.launch.backend, "nccl");
  EXPECT_EQ(gpu.launch.gpus_per_node, 8);
  const ScaleSpec h200 = load_scale_spec(kConfigs + "/scale/h200.pbtxt");
  EXPECT_EQ(h200.launch.gpus_per_node, 1);
  for (const ScaleSpec* spec : {&cpu, &gpu, &h200}) {
    const std::vector<ScalePoint> points = expand_scale_points(*spec);
    EXPECT_FALSE(points.empty());
    for (const ScalePoint& p : points) EXPECT_LE(p.ranks, spec == &cpu ? 4 : spec->launch.gpus_per_node) << p.id;
    // The model configs they name load too.
    EXPECT_NO_THROW(load_config_file(spec->config, spec->overrides)) << spec->name;
  }
}

TEST(ScaleSpec, SyntaxErrorsGiveFileLineColumn) {
  const std::string e = error_of("name: \"x\"\nseries { name: \"a\" kind: STRONG tokens: [1] }\nbogus: 3\n");
  EXPECT_NE(e.find("spec.pbtxt:3:"), std::string::npos) << e;
  EXPECT_NE(e.find("bogus"), std::string::npos) << e;
  const std::string kind = error_of("name: \"x\"\nseries { name: \"a\" kind: STRANG tokens: [1] }\n");
  EXPECT_NE(kind.find("spec.pbtxt:2:"), std::string::npos) << kind;
  EXPECT_NE(kind.find("STRANG"), std::string::npos) << kind;
}

TEST(ScaleSpec, BadValuesAreAllReportedWithTheirFieldPath) {
  const std::string e = error_of(R"(
    repeats: 0
    launch { backend: "gloo" timeout_s: 0 }
    series { name: "a b" kind: STRONG tokens: [0, 5, 5] ranks: [2, 2] }
    series { name: "s" kind: SERVE tokens: [10] batch: 2 ranks: [1] }
    series { name: "s" tokens: [10] ranks: [0] decode_tokens: 3 }
  )");
  for (const char* expected : {"spec.pbtxt: name: required", "repeats: 0 must be >= 1",
                               "launch.backend: 'gloo' must be mpi or nccl", "launch.timeout_s: 0 must be >= 1",
                               "series[0].name: 'a b' must be", "series[0].tokens: 0 must be > 0",
                               "series[0].tokens: 5 is listed twice", "series[0].ranks: 2 is listed twice",
                               "series[1].batch: a SERVE series serves one prompt", "series[2].name: 's' is used",
                               "series[2].kind: required", "series[2].ranks: 0 must be >= 1",
                               "series[2].decode_tokens: only a SERVE series decodes"}) {
    EXPECT_NE(e.find(expected), std::string::npos) << "missing '" << expected << "' in:\n" << e;
  }
}

TEST(ScaleSpec, MissingPiecesAreNamed) {
  EXPECT_NE(error_of("name: \"x\"").find("series: at least one series is required"), std::string::npos);
  EXPECT_NE(error_of("name: \"x\" series { name: \"a\" kind: WEAK tokens: [4] }")
                .find("series[0].ranks: no rank counts"),
            std::string::npos);
  EXPECT_NE(error_of("name: \"x\" ranks: [1] series { name: \"a\" kind: WEAK }").find("series[0].tokens: at least"),
            std::string::npos);
  try {
    load_scale_spec("/nonexistent/spec.pbtxt");
    FAIL() << "no error for a missing file";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/spec.pbtxt: cannot read"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace gsa
