#include "gsa/runtime/attention_mode.h"

#include <algorithm>
#include <sstream>

#include "gsa/runtime/error.h"

namespace gsa {

AttentionModeOptions attention_mode_options(AttentionMode mode, const GsaOptions& options) {
  AttentionModeOptions m;
  m.mode = mode;
  m.insert_gists = mode != AttentionMode::kFull;
  m.gist = options.gist;
  m.attention = options.attention;
  m.attention.selection.enabled = mode == AttentionMode::kSelective;
  m.selective = m.attention.selection.enabled;
  return m;
}

Document mode_document(const Document& doc, const AttentionModeOptions& mode) {
  if (mode.insert_gists) return doc;
  Document raw;
  raw.suffix = doc.context;
  raw.suffix.insert(raw.suffix.end(), doc.suffix.begin(), doc.suffix.end());
  return raw;
}

AttentionMode parse_attention_mode(const std::string& name) {
  for (AttentionMode mode : {AttentionMode::kFull, AttentionMode::kGist, AttentionMode::kSelective}) {
    if (name == attention_mode_name(mode)) return mode;
  }
  throw Error(str_cat("attention mode '", name, "' is not one of full, gist, selective"));
}

std::vector<AttentionMode> parse_attention_modes(const std::string& list) {
  std::vector<AttentionMode> modes;
  std::istringstream in(list);
  std::string name;
  while (std::getline(in, name, ',')) {
    const AttentionMode mode = parse_attention_mode(name);
    GSA_CHECK(std::find(modes.begin(), modes.end(), mode) == modes.end(), "attention mode '", name,
              "' is listed twice in '", list, "'");
    modes.push_back(mode);
  }
  GSA_CHECK(!modes.empty(), "no attention mode in '", list, "' (give full, gist and/or selective)");
  return modes;
}

const char* attention_mode_name(AttentionMode mode) {
  switch (mode) {
    case AttentionMode::kFull:
      return "full";
    case AttentionMode::kGist:
      return "gist";
    case AttentionMode::kSelective:
      return "selective";
  }
  throw Error("attention_mode_name: invalid AttentionMode");
}

AttentionMode config_attention_mode(const GsaOptions& options) {
  return options.attention.selection.enabled ? AttentionMode::kSelective : AttentionMode::kGist;
}

}  // namespace gsa
