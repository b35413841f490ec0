#include "reflection_util.h"

#include "gsa_config.pb.h"

namespace gsa::config_detail {

namespace pb = google::protobuf;

std::string join(const std::vector<std::string>& parts, const std::string& separator) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += separator;
    out += parts[i];
  }
  return out;
}

std::vector<std::string> split_path(const std::string& dotted) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t dot = dotted.find('.', start);
    parts.push_back(dotted.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) return parts;
    start = dot + 1;
  }
}

std::string field_names(const pb::Descriptor* message) {
  std::vector<std::string> names;
  for (int i = 0; i < message->field_count(); ++i) names.push_back(message->field(i)->name());
  return join(names, ", ");
}

std::string enum_value_names(const pb::EnumDescriptor* e) {
  std::vector<std::string> names;
  for (int i = 0; i < e->value_count(); ++i) names.push_back(e->value(i)->name());
  return join(names, ", ");
}

const pb::FieldDescriptor* find_field(const pb::Descriptor* root, const std::vector<std::string>& path) {
  const pb::Descriptor* message = root;
  const pb::FieldDescriptor* field = nullptr;
  for (const std::string& name : path) {
    if (message == nullptr) return nullptr;
    field = message->FindFieldByName(name);
    if (field == nullptr) return nullptr;
    message = field->message_type();
  }
  return field;
}

namespace {

// The 0-based location of `path` in the parsed text; line -1 when the text does not set it.
pb::TextFormat::ParseLocation locate(const pb::TextFormat::ParseInfoTree* tree, const std::vector<std::string>& path) {
  const pb::Descriptor* message = gsa::config::GsaConfig::descriptor();
  for (size_t i = 0; i < path.size() && tree != nullptr && message != nullptr; ++i) {
    const pb::FieldDescriptor* field = message->FindFieldByName(path[i]);
    if (field == nullptr) return {};
    if (i + 1 == path.size()) return tree->GetLocation(field, field->is_repeated() ? 0 : -1);  // a list: its first
    tree = tree->GetTreeForNested(field, -1);
    message = field->message_type();
  }
  return {};
}

}  // namespace

std::string ValueOrigins::where(const std::vector<std::string>& dotted_paths) const {
  const OverrideRecord* last_override = nullptr;
  pb::TextFormat::ParseLocation latest;
  for (const std::string& dotted : dotted_paths) {
    if (overrides_ != nullptr) {
      const auto it = overrides_->find(dotted);
      if (it != overrides_->end() && (last_override == nullptr || it->second.order > last_override->order)) {
        last_override = &it->second;
      }
    }
    const pb::TextFormat::ParseLocation location = locate(tree_, split_path(dotted));
    if (location.line > latest.line || (location.line == latest.line && location.column > latest.column)) {
      latest = location;
    }
  }
  if (last_override != nullptr) return last_override->text;
  if (latest.line >= 0) {
    return source_name_ + ":" + std::to_string(latest.line + 1) + ":" + std::to_string(latest.column + 1);
  }
  return source_name_;
}

}  // namespace gsa::config_detail
