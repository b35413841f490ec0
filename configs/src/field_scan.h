// Finds the field path at a position of protobuf text format, so that a parse error (which protobuf reports
// with a line, a column and the bare field name) can name the full path, e.g. `gist.levels`.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace gsa::config_detail {

// Lines and columns are 0-based and counted as protobuf's io::Tokenizer does (a tab advances the column to
// the next multiple of 8); -1 when absent.
struct TextPosition {
  int line = -1;
  int column = -1;
};

struct FieldAtPosition {
  // The names of the enclosing messages followed by the name of the last field started in the innermost one.
  std::vector<std::string> path;
  size_t open_messages = 0;  // how many of the path's names are messages still open at the position
  TextPosition name;         // where that last field name starts
  TextPosition last_token;   // where the last token before the position starts
};

// The field being read just before `position` of `text`, considering the tokens that start before it
// (protobuf reports an error at the token after the last one it consumed). Best effort on malformed text:
// never throws, never reads out of range; the path is empty when the position precedes every field.
FieldAtPosition field_at(const std::string& text, TextPosition position);

}  // namespace gsa::config_detail
