#include "json_writer.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "gsa/runtime/error.h"

namespace gsa::json {
namespace {

std::string format_float(double v) {
  GSA_CHECK(std::isfinite(v), "JSON has no ", v, " (only finite numbers)");
  char buf[40];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof(buf), "%.*g", digits, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string out = buf;
  if (out.find_first_of(".eE") == std::string::npos) out += ".0";
  return out;
}

void write(const Value& v, int indent, int depth, std::string& out) {
  const std::string pad = indent > 0 ? "\n" + std::string(static_cast<size_t>(indent * (depth + 1)), ' ') : "";
  const std::string close = indent > 0 ? "\n" + std::string(static_cast<size_t>(indent * depth), ' ') : "";
  const char* separator = indent > 0 ? ": " : ":";
  switch (v.kind) {
    case Value::Kind::kNull:
      out += "null";
      return;
    case Value::Kind::kBool:
      out += v.bool_value ? "true" : "false";
      return;
    case Value::Kind::kInteger:
      out += std::to_string(v.int_value);
      return;
    case Value::Kind::kFloat:
      out += format_float(v.float_value);
      return;
    case Value::Kind::kString:
      out += quote_json(v.string_value);
      return;
    case Value::Kind::kArray:
      if (v.array_items.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t i = 0; i < v.array_items.size(); ++i) {
        out += i == 0 ? pad : "," + pad;
        write(v.array_items[i], indent, depth + 1, out);
      }
      out += close + ']';
      return;
    case Value::Kind::kObject:
      if (v.object_items.empty()) {
        out += "{}";
        return;
      }
      out += '{';
      for (size_t i = 0; i < v.object_items.size(); ++i) {
        out += i == 0 ? pad : "," + pad;
        out += quote_json(v.object_items[i].first);
        out += separator;
        write(v.object_items[i].second, indent, depth + 1, out);
      }
      out += close + '}';
      return;
  }
}

}  // namespace

std::string write_json(const Value& value, int indent) {
  std::string out;
  write(value, indent, 0, out);
  return out;
}

Value make_string(std::string text) {
  Value v;
  v.kind = Value::Kind::kString;
  v.string_value = std::move(text);
  return v;
}

Value make_integer(int64_t i) {
  Value v;
  v.kind = Value::Kind::kInteger;
  v.int_value = i;
  return v;
}

Value make_float(double d) {
  Value v;
  v.kind = Value::Kind::kFloat;
  v.float_value = d;
  return v;
}

Value make_bool(bool b) {
  Value v;
  v.kind = Value::Kind::kBool;
  v.bool_value = b;
  return v;
}

Value make_null() { return Value{}; }

void set_member(Value& object, const std::string& key, Value value) {
  GSA_CHECK(object.is_object(), "set_member on a JSON ", kind_name(object.kind));
  for (auto& [k, v] : object.object_items) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  object.object_items.emplace_back(key, std::move(value));
}

void remove_member(Value& object, const std::string& key) {
  auto& items = object.object_items;
  for (auto it = items.begin(); it != items.end(); ++it) {
    if (it->first == key) {
      items.erase(it);
      return;
    }
  }
}

}  // namespace gsa::json
