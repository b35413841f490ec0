// state.pbtxt through protobuf's text format; the contract is in gsa/config/checkpoint_state.h.
#include "gsa/config/checkpoint_state.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <vector>

#include "checkpoint_state.pb.h"
#include "gsa/config/config_loader.h"
#include "text_errors.h"

namespace gsa {
namespace {

namespace pb = google::protobuf;

using Collector = config_detail::TextErrorCollector;

}  // namespace

std::string checkpoint_state_to_text(const CheckpointState& state) {
  config::CheckpointState proto;
  proto.set_step(state.step);
  for (const auto& [name, text] : state.generators) {
    config::GeneratorState* g = proto.add_generators();
    g->set_name(name);
    g->set_state(text);
  }
  for (const auto& [name, bytes] : state.files) {
    config::CheckpointFile* f = proto.add_files();
    f->set_name(name);
    f->set_bytes(bytes);
  }
  std::string body;
  pb::TextFormat::PrintToString(proto, &body);
  return "# gsa checkpoint state (written by gsa::checkpoint_state_to_text)\n" + body;
}

CheckpointState parse_checkpoint_state(const std::string& text, const std::string& source_name) {
  config::CheckpointState proto;
  Collector collector(source_name);
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&collector);
  if (!parser.ParseFromString(text, &proto)) {
    throw ConfigError(collector.errors.empty() ? source_name + ": cannot parse the checkpoint state"
                                               : collector.errors);
  }
  if (!proto.has_step()) throw ConfigError(source_name + ": missing field step");
  if (proto.step() < 0) throw ConfigError(source_name + ": step = " + std::to_string(proto.step()) + " is negative");
  CheckpointState state;
  state.step = proto.step();
  for (const config::GeneratorState& g : proto.generators()) {
    if (!state.generators.emplace(g.name(), g.state()).second) {
      throw ConfigError(source_name + ": generator '" + g.name() + "' appears twice");
    }
  }
  for (const config::CheckpointFile& f : proto.files()) {
    if (f.bytes() < 0) throw ConfigError(source_name + ": file '" + f.name() + "' has a negative size");
    if (!state.files.emplace(f.name(), f.bytes()).second) {
      throw ConfigError(source_name + ": file '" + f.name() + "' appears twice");
    }
  }
  return state;
}

}  // namespace gsa
