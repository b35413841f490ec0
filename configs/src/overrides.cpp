#include "overrides.h"

#include <cctype>
#include <cstdint>
#include <limits>
#include <vector>

#include "gsa/config/config_loader.h"
#include "gsa/config/parse_number.h"

namespace gsa::config_detail {
namespace {

namespace pb = google::protobuf;

std::string trim(const std::string& s) {
  size_t begin = 0;
  size_t end = s.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(s[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(s[end - 1]))) --end;
  return s.substr(begin, end - begin);
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool parse_bool(const std::string& text, bool& out) {
  const std::string v = lower(text);
  if (v == "true" || v == "1") {
    out = true;
    return true;
  }
  if (v == "false" || v == "0") {
    out = false;
    return true;
  }
  return false;
}

// Sets `field` (a scalar of `message`) from `value`; returns the expected-type phrase on failure, "" on success.
std::string set_scalar(pb::Message& message, const pb::FieldDescriptor* field, const std::string& raw_value) {
  const pb::Reflection* reflection = message.GetReflection();
  const std::string value = field->cpp_type() == pb::FieldDescriptor::CPPTYPE_STRING ? raw_value : trim(raw_value);
  switch (field->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT64: {
      int64_t v = 0;
      if (!parse_int64(value, v)) return "a 64-bit integer";
      reflection->SetInt64(&message, field, v);
      return "";
    }
    case pb::FieldDescriptor::CPPTYPE_INT32: {
      int64_t v = 0;
      if (!parse_int64(value, v) || v < std::numeric_limits<int32_t>::min() ||
          v > std::numeric_limits<int32_t>::max()) {
        return "a 32-bit integer";
      }
      reflection->SetInt32(&message, field, static_cast<int32_t>(v));
      return "";
    }
    case pb::FieldDescriptor::CPPTYPE_UINT64: {
      uint64_t v = 0;
      if (!parse_uint64(value, v)) return "an unsigned 64-bit integer";
      reflection->SetUInt64(&message, field, v);
      return "";
    }
    case pb::FieldDescriptor::CPPTYPE_UINT32: {
      uint64_t v = 0;
      if (!parse_uint64(value, v) || v > std::numeric_limits<uint32_t>::max()) return "an unsigned 32-bit integer";
      reflection->SetUInt32(&message, field, static_cast<uint32_t>(v));
      return "";
    }
    case pb::FieldDescriptor::CPPTYPE_DOUBLE: {
      double v = 0;
      if (!parse_double(value, v)) return "a number";
      reflection->SetDouble(&message, field, v);
      return "";
    }
    case pb::FieldDescriptor::CPPTYPE_FLOAT: {
      double v = 0;
      if (!parse_double(value, v)) return "a number";
      reflection->SetFloat(&message, field, static_cast<float>(v));
      return "";
    }
    case pb::FieldDescriptor::CPPTYPE_BOOL: {
      bool v = false;
      if (!parse_bool(value, v)) return "a bool (true, false, 1 or 0)";
      reflection->SetBool(&message, field, v);
      return "";
    }
    case pb::FieldDescriptor::CPPTYPE_STRING:
      reflection->SetString(&message, field, value);
      return "";
    case pb::FieldDescriptor::CPPTYPE_ENUM: {
      const pb::EnumDescriptor* type = field->enum_type();
      for (int i = 0; i < type->value_count(); ++i) {
        if (lower(type->value(i)->name()) == lower(value)) {
          reflection->SetEnum(&message, field, type->value(i));
          return "";
        }
      }
      return "one of " + enum_value_names(type);
    }
    case pb::FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  return "a scalar";
}

[[noreturn]] void fail(const std::string& where, const std::string& reason) {
  throw ConfigError(where + ": " + reason);
}

}  // namespace

void apply_override(pb::Message& root, const std::string& override_text, int order, OverrideLog& log) {
  const std::string where = "--set " + override_text;

  const size_t equals = override_text.find('=');
  if (equals == std::string::npos) fail(where, "missing '=' (expected a.b.c=value)");
  const std::string dotted = trim(override_text.substr(0, equals));
  const std::string value = override_text.substr(equals + 1);
  if (dotted.empty()) fail(where, "missing field path before '=' (expected a.b.c=value)");

  const std::vector<std::string> path = split_path(dotted);
  pb::Message* message = &root;
  std::string walked;  // the dotted path of `message`, "" at the root
  for (size_t i = 0; i < path.size(); ++i) {
    const pb::Descriptor* type = message->GetDescriptor();
    const std::string here = walked.empty() ? "top level" : walked;
    if (path[i].empty())
      fail(where, "empty field name in '" + dotted + "' (valid fields at " + here + ": " + field_names(type) + ")");
    const std::string prefix = walked.empty() ? path[i] : walked + "." + path[i];
    const pb::FieldDescriptor* field = type->FindFieldByName(path[i]);
    if (field == nullptr) {
      fail(where, "unknown field " + prefix + " (valid fields " + (walked.empty() ? "at top level" : "of " + walked) +
                      ": " + field_names(type) + ")");
    }
    if (field->is_repeated()) fail(where, prefix + " is a repeated field; overrides set single values only");
    const bool last = i + 1 == path.size();
    if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      if (last) {
        fail(where, prefix + " is a message; set one of its fields (" + field_names(field->message_type()) + ")");
      }
      message = message->GetReflection()->MutableMessage(message, field);
      walked = prefix;
      continue;
    }
    if (!last) fail(where, prefix + " is a " + field->type_name() + " field, not a message");
    const std::string expected = set_scalar(*message, field, value);
    if (!expected.empty()) fail(where, prefix + " expects " + expected + ", got \"" + value + "\"");
    log[prefix] = OverrideRecord{order, where};
  }
}

}  // namespace gsa::config_detail
