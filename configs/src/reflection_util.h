// Small helpers over protobuf reflection shared by the loader, the overrides and the validation.
#pragma once

#include <google/protobuf/descriptor.h>
#include <google/protobuf/text_format.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace gsa::config_detail {

// "a, b, c".
std::string join(const std::vector<std::string>& parts, const std::string& separator);

// Splits "a.b.c" on dots (empty parts kept, so that callers can reject them).
std::vector<std::string> split_path(const std::string& dotted);

// The field names of `message` in declaration order, joined: "sink, chunk, fanout, ...".
std::string field_names(const google::protobuf::Descriptor* message);

// The value names of `e`, joined: "FLOAT32, BFLOAT16".
std::string enum_value_names(const google::protobuf::EnumDescriptor* e);

// Walks `path` from `root` through message fields; null when some name is not a field (or a non-final name
// is not a message field).
const google::protobuf::FieldDescriptor* find_field(const google::protobuf::Descriptor* root,
                                                    const std::vector<std::string>& path);

// Where each field that an override set got its value: dotted path -> (override order, "--set a.b=c").
struct OverrideRecord {
  int order = 0;
  std::string text;
};
using OverrideLog = std::map<std::string, OverrideRecord>;

// Names where the value of a field came from, for error messages: the override that set it last, else its
// place in the parsed text (`FILE:LINE:COLUMN`, 1-based), else the file (the value is a default).
class ValueOrigins {
 public:
  ValueOrigins(std::string source_name, const google::protobuf::TextFormat::ParseInfoTree* tree,
               const OverrideLog* overrides)
      : source_name_(std::move(source_name)), tree_(tree), overrides_(overrides) {}

  // For a problem involving several fields: the override applied last among them, else the field set latest
  // in the text, else the file.
  std::string where(const std::vector<std::string>& dotted_paths) const;

 private:
  const std::string source_name_;
  const google::protobuf::TextFormat::ParseInfoTree* tree_;
  const OverrideLog* overrides_;
};

}  // namespace gsa::config_detail
