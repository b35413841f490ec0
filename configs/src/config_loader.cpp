// The public entry points of config_loader.h: parse (with file:line:column errors that name the field path),
// apply overrides, validate, convert.
#include "gsa/config/config_loader.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "convert.h"
#include "embedded_demo_config.h"
#include "field_scan.h"
#include "gsa_config.pb.h"
#include "overrides.h"
#include "reflection_util.h"
#include "validate.h"

namespace gsa {
namespace {

namespace pb = google::protobuf;
using config_detail::join;

struct ParseError {
  int line;    // 0-based
  int column;  // 0-based
  std::string message;
};

class CollectingErrorCollector : public pb::io::ErrorCollector {
 public:
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    errors.push_back({line, column, message});
  }
  void AddWarning(int, pb::io::ColumnNumber, const std::string&) override {}

  std::vector<ParseError> errors;
};

// The text between the first `open` in `s` and the next `close`; "" when either is absent.
std::string between(const std::string& s, const std::string& open, const std::string& close) {
  const size_t begin = s.find(open);
  if (begin == std::string::npos) return "";
  const size_t start = begin + open.size();
  const size_t end = s.find(close, start);
  return end == std::string::npos ? "" : s.substr(start, end - start);
}

// "FILE:LINE:COLUMN: <field path>: <reason>" for one parse error: protobuf's message, rewritten to name the
// full field path (and the valid names, where useful), at the most useful position.
std::string describe_parse_error(const std::string& text, const std::string& source_name, const ParseError& error) {
  const config_detail::FieldAtPosition at = config_detail::field_at(text, {error.line, error.column});
  const std::string dotted = join(at.path, ".");
  const pb::Descriptor* root = config::GsaConfig::descriptor();
  auto where = [&](config_detail::TextPosition p) {
    if (p.line < 0) p = {error.line, error.column};
    return source_name + ":" + std::to_string(p.line + 1) + ":" + std::to_string(p.column + 1) + ": ";
  };

  // Message type "gsa.config.GistConfig" has no field named "foo". (Reported after the name: point at it.)
  const std::string unknown_name = between(error.message, "has no field named \"", "\"");
  if (!unknown_name.empty()) {
    const std::string type_name = between(error.message, "Message type \"", "\"");
    const pb::Descriptor* type = pb::DescriptorPool::generated_pool()->FindMessageTypeByName(type_name);
    const bool named = !at.path.empty() && at.path.back() == unknown_name;
    std::vector<std::string> parent = at.path;
    if (named) parent.pop_back();
    const std::string parent_dotted = join(parent, ".");
    std::string out = "unknown field " + (parent_dotted.empty() ? unknown_name : parent_dotted + "." + unknown_name);
    if (type != nullptr) {
      out += " (valid fields " + (parent_dotted.empty() ? std::string("at top level") : "of " + parent_dotted) + ": " +
             config_detail::field_names(type) + ")";
    }
    return where(named ? at.name : config_detail::TextPosition{}) + out;
  }

  // Unknown enumeration value of "BF16" for field "dtype". (Reported after the value: point at it.)
  const std::string enum_value = between(error.message, "Unknown enumeration value of \"", "\"");
  if (!enum_value.empty()) {
    const pb::FieldDescriptor* field = config_detail::find_field(root, at.path);
    std::string out = dotted + ": unknown enum value \"" + enum_value + "\"";
    if (field != nullptr && field->enum_type() != nullptr) {
      out += " (valid: " + config_detail::enum_value_names(field->enum_type()) + ")";
    }
    return where(at.last_token) + out;
  }

  // The text ended inside a message: protobuf says "Expected identifier, got: " (an empty token).
  const std::string empty_token = "got: ";
  const bool at_end =
      error.message.size() >= empty_token.size() &&
      error.message.compare(error.message.size() - empty_token.size(), empty_token.size(), empty_token) == 0;
  if (at_end && at.open_messages > 0) {
    const std::vector<std::string> open(at.path.begin(), at.path.begin() + at.open_messages);
    return where({}) + "unexpected end of text: " + join(open, ".") + " is not closed (missing '}')";
  }

  return where({}) + (dotted.empty() ? error.message : dotted + ": " + error.message);
}

// True when `text` holds only blanks and # comments (an empty or truncated file, not a config).
bool sets_nothing(const std::string& text) {
  bool in_comment = false;
  for (const char ch : text) {
    if (ch == '\n') {
      in_comment = false;
    } else if (ch == '#') {
      in_comment = true;
    } else if (!in_comment && !std::isspace(static_cast<unsigned char>(ch))) {
      return false;
    }
  }
  return true;
}

GsaOptions load(const std::string& text, const std::string& source_name, const std::vector<std::string>& overrides) {
  config::GsaConfig config;
  pb::TextFormat::ParseInfoTree tree;
  CollectingErrorCollector collector;
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&collector);
  parser.WriteLocationsTo(&tree);
  if (!parser.ParseFromString(text, &config)) {
    std::vector<std::string> lines;
    for (const ParseError& error : collector.errors) {
      lines.push_back(describe_parse_error(text, source_name, error));
    }
    if (lines.empty()) lines.push_back(source_name + ": cannot parse the config");
    throw ConfigError(join(lines, "\n"));
  }

  config_detail::OverrideLog override_log;
  for (size_t i = 0; i < overrides.size(); ++i) {
    config_detail::apply_override(config, overrides[i], static_cast<int>(i), override_log);
  }

  GsaOptions options = config_detail::from_proto(config);
  const config_detail::ValueOrigins origins(source_name, &tree, &override_log);
  const std::vector<std::string> errors = config_detail::validate(options, origins);
  if (!errors.empty()) throw ConfigError(join(errors, "\n"));
  return options;
}

}  // namespace

GsaOptions load_config_file(const std::string& path, const std::vector<std::string>& overrides) {
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) {
    throw ConfigError(path + ": is a directory, not a config file (give the .pbtxt file)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot open the config file (" + std::strerror(errno) + ")");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ConfigError(path + ": cannot read the config file");
  if (sets_nothing(text.str())) {
    throw ConfigError(path + ": the config file is empty (no field is set; a file taking every default needs at "
                             "least one field, e.g. train { steps: 300 })");
  }
  return load(text.str(), path, overrides);
}

GsaOptions load_config_text(const std::string& text, const std::string& source_name,
                            const std::vector<std::string>& overrides) {
  return load(text, source_name, overrides);
}

const std::string& embedded_demo_config_text() {
  static const std::string text(config_detail::kEmbeddedDemoConfigText);
  return text;
}

const std::string& embedded_demo_config_name() {
  static const std::string name("<embedded configs/demo.pbtxt>");
  return name;
}

GsaOptions load_embedded_demo_config(const std::vector<std::string>& overrides) {
  return load(embedded_demo_config_text(), embedded_demo_config_name(), overrides);
}

std::string options_to_text(const GsaOptions& options) {
  std::string body;
  pb::TextFormat::Printer printer;
  printer.PrintToString(config_detail::to_proto(options), &body);
  return "# gsa config (every field; written by gsa::options_to_text)\n" + body;
}

}  // namespace gsa
