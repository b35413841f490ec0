#include "gsa/config/scale_spec.h"

#include <google/protobuf/text_format.h>

#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include "gsa/config/config_loader.h"
#include "scale_spec.pb.h"
#include "text_errors.h"

namespace gsa {
namespace {

namespace pb = google::protobuf;

std::string resolve(const std::string& path, const std::string& base_dir) {
  if (path.empty() || path[0] == '/' || base_dir.empty()) return path;
  return base_dir + "/" + path;
}

bool valid_name(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  }
  return true;
}

std::string list(const std::vector<int64_t>& v) {
  std::string out;
  for (int64_t x : v) out += (out.empty() ? "" : ",") + std::to_string(x);
  return out;
}

}  // namespace

const char* scale_kind_name(ScaleKind kind) {
  switch (kind) {
    case ScaleKind::kStrong: return "strong";
    case ScaleKind::kWeak: return "weak";
    case ScaleKind::kServe: return "serve";
  }
  return "?";
}

const char* scale_placement_name(ScalePlacement p) {
  switch (p) {
    case ScalePlacement::kSections:
      return "sections";
    case ScalePlacement::kWork:
      return "work";
    case ScalePlacement::kMeasured:
      return "measured";
  }
  return "?";
}

ScaleSpec load_scale_spec_text(const std::string& text, const std::string& source_name, const std::string& base_dir) {
  config::ScaleSpec proto;
  config_detail::TextErrorCollector collector(source_name);
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&collector);
  if (!parser.ParseFromString(text, &proto)) {
    throw ConfigError(collector.errors.empty() ? source_name + ": cannot parse the scaling spec" : collector.errors);
  }
  std::vector<std::string> problems;
  auto bad = [&](const std::string& field, const std::string& why) { problems.push_back(source_name + ": " + field + ": " + why); };

  ScaleSpec spec;
  spec.name = proto.name();
  if (!proto.has_name() || spec.name.empty()) bad("name", "required (the experiment's name)");
  spec.config = resolve(proto.config(), base_dir);
  spec.overrides.assign(proto.set().begin(), proto.set().end());
  spec.warmup = proto.warmup();
  spec.repeats = proto.repeats();
  spec.suffix = proto.suffix();
  if (spec.warmup < 0) bad("warmup", std::to_string(spec.warmup) + " must be >= 0");
  if (spec.repeats < 1) bad("repeats", std::to_string(spec.repeats) + " must be >= 1");
  if (spec.suffix < 2) bad("suffix", std::to_string(spec.suffix) + " must be >= 2");
  std::vector<int64_t> ranks(proto.ranks().begin(), proto.ranks().end());
  for (int64_t r : ranks) {
    if (r < 1) bad("ranks", std::to_string(r) + " must be >= 1");
  }

  const config::ScaleLaunch& l = proto.launch();
  spec.launch.backend = l.backend();
  if (spec.launch.backend != "mpi" && spec.launch.backend != "nccl") {
    bad("launch.backend", "'" + spec.launch.backend + "' must be mpi or nccl");
  }
  spec.launch.hostfile = resolve(l.hostfile(), base_dir);
  if (l.has_gpus_per_node()) {
    spec.launch.gpus_per_node = l.gpus_per_node();
    if (l.gpus_per_node() < 0) bad("launch.gpus_per_node", std::to_string(l.gpus_per_node()) + " must be >= 0");
  }
  spec.launch.oversubscribe = l.oversubscribe();
  spec.launch.allow_run_as_root = l.allow_run_as_root();
  spec.launch.timeout_s = l.timeout_s();
  if (spec.launch.timeout_s < 1) bad("launch.timeout_s", std::to_string(spec.launch.timeout_s) + " must be >= 1");
  spec.launch.mpirun_args.assign(l.mpirun_arg().begin(), l.mpirun_arg().end());

  if (proto.series_size() == 0) bad("series", "at least one series is required");
  std::set<std::string> names;
  for (int i = 0; i < proto.series_size(); ++i) {
    const config::ScaleSeries& s = proto.series(i);
    const std::string at = "series[" + std::to_string(i) + "]";
    ScaleSeriesSpec out;
    out.name = s.name();
    if (!valid_name(out.name)) {
      bad(at + ".name", "'" + out.name + "' must be non-empty letters, digits, '_' or '-' (it names folders)");
    } else if (!names.insert(out.name).second) {
      bad(at + ".name", "'" + out.name + "' is used by an earlier series");
    }
    if (!s.has_kind()) bad(at + ".kind", "required (STRONG, WEAK or SERVE)");
    out.kind = s.kind() == config::WEAK ? ScaleKind::kWeak : s.kind() == config::SERVE ? ScaleKind::kServe
                                                                                     : ScaleKind::kStrong;
    out.tokens.assign(s.tokens().begin(), s.tokens().end());
    if (out.tokens.empty()) bad(at + ".tokens", "at least one token count is required");
    std::set<int64_t> seen_tokens;
    for (int64_t t : out.tokens) {
      if (t < 1) bad(at + ".tokens", std::to_string(t) + " must be > 0");
      if (!seen_tokens.insert(t).second) bad(at + ".tokens", std::to_string(t) + " is listed twice");
    }
    out.ranks.assign(s.ranks().begin(), s.ranks().end());
    if (out.ranks.empty()) out.ranks = ranks;
    if (out.ranks.empty()) bad(at + ".ranks", "no rank counts: set ranks in the series or at top level");
    std::set<int64_t> seen_ranks;
    for (int64_t r : out.ranks) {
      if (r < 1) bad(at + ".ranks", std::to_string(r) + " must be >= 1");
      if (!seen_ranks.insert(r).second) bad(at + ".ranks", std::to_string(r) + " is listed twice (" + list(out.ranks) + ")");
    }
    out.batch = s.batch();
    if (out.batch < 1) bad(at + ".batch", std::to_string(out.batch) + " must be >= 1");
    if (out.kind == ScaleKind::kServe && out.batch != 1) bad(at + ".batch", "a SERVE series serves one prompt: must be 1");
    out.decode_tokens = s.decode_tokens();
    if (out.decode_tokens < 1) bad(at + ".decode_tokens", std::to_string(out.decode_tokens) + " must be >= 1");
    if (out.kind != ScaleKind::kServe && s.has_decode_tokens()) {
      bad(at + ".decode_tokens", "only a SERVE series decodes");
    }
    std::set<int> seen_placements;
    for (int p : s.placement()) {
      if (!seen_placements.insert(p).second) bad(at + ".placement", "a placement is listed twice");
      out.placements.push_back(p == config::WORK       ? ScalePlacement::kWork
                               : p == config::MEASURED ? ScalePlacement::kMeasured
                                                       : ScalePlacement::kSections);
    }
    if (out.placements.empty()) out.placements.push_back(ScalePlacement::kSections);
    spec.series.push_back(std::move(out));
  }
  if (!problems.empty()) {
    std::string all;
    for (const std::string& p : problems) all += (all.empty() ? "" : "\n") + p;
    throw ConfigError(all);
  }
  return spec;
}

ScaleSpec load_scale_spec(const std::string& path) {
  std::ifstream in(path);
  if (!in.good()) throw ConfigError(path + ": cannot read the scaling spec");
  std::stringstream text;
  text << in.rdbuf();
  const size_t slash = path.rfind('/');
  return load_scale_spec_text(text.str(), path, slash == std::string::npos ? "." : path.substr(0, slash));
}

std::vector<ScalePoint> expand_scale_points(const ScaleSpec& spec) {
  std::vector<ScalePoint> points;
  for (const ScaleSeriesSpec& s : spec.series) {
    for (int64_t ranks : s.ranks) {
      for (int64_t tokens : s.tokens) {
        for (ScalePlacement placement : s.placements) {
          if (ranks == 1 && placement != s.placements.front()) continue;  // one shard: one point stands for all
          ScalePoint p;
          p.series = s.name;
          p.kind = s.kind;
          p.ranks = ranks;
          p.tokens = s.kind == ScaleKind::kWeak ? tokens * ranks : tokens;
          p.batch = s.batch;
          p.decode_tokens = s.decode_tokens;
          p.placement = placement;
          p.id = s.name + "-r" + std::to_string(ranks) + "-t" + std::to_string(tokens) +
                 (placement == ScalePlacement::kSections ? "" : std::string("-") + scale_placement_name(placement));
          points.push_back(p);
        }
      }
    }
  }
  return points;
}

}  // namespace gsa
