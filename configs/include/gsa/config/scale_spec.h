// The spec of a scaling experiment (schema and rules: configs/proto/scale_spec.proto) as plain structs, and the
// grid of points it expands to (gsa experiment scale).
//
// Contract:
// - load_scale_spec parses the protobuf text (syntax errors: "FILE:LINE:COLUMN: message"), checks every rule of
//   the schema and reports all violations at once, one line each naming the field path
//   ("FILE: series[1].tokens: 0 must be > 0"); any failure throws ConfigError (config_loader.h). Relative
//   paths (config, launch.hostfile) are resolved against the spec file's folder.
// - expand_scale_points lists the points in spec order: series, then rank counts, then tokens, then placements.
//   A point's id is "<series>-r<ranks>-t<tokens>[-work]" (tokens as written in the spec: per rank for WEAK); ids
//   are unique. One rank has one shard whatever the placement: a 1-rank WORK point is listed only when the series
//   names no other placement (else its SECTIONS point is the shared baseline).
// - No protobuf or LibTorch types here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gsa {

enum class ScaleKind { kStrong, kWeak, kServe };
enum class ScalePlacement { kSections, kWork, kMeasured };

const char* scale_kind_name(ScaleKind kind);            // "strong" | "weak" | "serve"
const char* scale_placement_name(ScalePlacement p);     // "sections" | "work" | "measured"

struct ScaleSeriesSpec {
  std::string name;
  ScaleKind kind = ScaleKind::kStrong;
  std::vector<int64_t> tokens;
  std::vector<int64_t> ranks;          // resolved: the spec's ranks when the series names none
  int64_t batch = 1;
  int64_t decode_tokens = 8;
  std::vector<ScalePlacement> placements;  // resolved: [kSections] when none
};

struct ScaleLaunchSpec {
  std::string backend = "mpi";
  std::string hostfile;                // absolute or as written when already absolute; "" none
  int64_t gpus_per_node = -1;          // -1: unset
  bool oversubscribe = false;
  bool allow_run_as_root = false;
  int64_t timeout_s = 600;
  std::vector<std::string> mpirun_args;
};

struct ScaleSpec {
  std::string name;
  std::string config;                  // resolved path; "" = the embedded demo config
  std::vector<std::string> overrides;
  int64_t warmup = 1, repeats = 3, suffix = 16;
  ScaleLaunchSpec launch;
  std::vector<ScaleSeriesSpec> series;
};

struct ScalePoint {
  std::string id;
  std::string series;
  ScaleKind kind = ScaleKind::kStrong;
  int64_t ranks = 1;
  int64_t tokens = 0;                  // raw tokens of the row (WEAK: spec tokens x ranks)
  int64_t batch = 1;
  int64_t decode_tokens = 8;
  ScalePlacement placement = ScalePlacement::kSections;
};

ScaleSpec load_scale_spec(const std::string& path);
// As load_scale_spec for text in memory; `source_name` is FILE in errors, relative paths resolve against
// `base_dir`.
ScaleSpec load_scale_spec_text(const std::string& text, const std::string& source_name, const std::string& base_dir);

std::vector<ScalePoint> expand_scale_points(const ScaleSpec& spec);

}  // namespace gsa
