// Writing a json::Value (json_reader.h) back to JSON text, private to the runtime (gsa export writes
// config.json, the safetensors index and an edited tokenizer.json with it).
//
// Contract: objects keep their key order, strings go through quote_json (UTF-8 passes through unchanged),
// integers are written in decimal, floats with the fewest significant digits that read back to the same double
// and always with a '.' or an exponent (so they stay floats); NaN and infinities throw gsa::Error (JSON has
// none). indent > 0 writes one member or item per line indented by that many spaces per level; indent 0
// writes everything on one line. parse_json(write_json(v)) equals v.
#pragma once

#include <string>

#include "gsa/runtime/json_reader.h"

namespace gsa::json {

std::string write_json(const Value& value, int indent = 2);

// Builders for writing code: a string, an integer, a float, a bool, and null.
Value make_string(std::string text);
Value make_integer(int64_t v);
Value make_float(double v);
Value make_bool(bool v);
Value make_null();

// Sets key of an object to value: replaces the member if present, else appends it.
void set_member(Value& object, const std::string& key, Value value);
// Removes key from an object if present.
void remove_member(Value& object, const std::string& key);

}  // namespace gsa::json
