// Protobuf text-format parse errors as "SOURCE:LINE:COLUMN: message" lines (1-based), for the small text files
// parsed without the full config loader's field-path rewriting (checkpoint state, scaling specs).
#pragma once

#include <google/protobuf/io/tokenizer.h>

#include <string>

namespace gsa::config_detail {

class TextErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  explicit TextErrorCollector(const std::string& source) : source_(source) {}
  void AddError(int line, google::protobuf::io::ColumnNumber column, const std::string& message) override {
    errors += (errors.empty() ? "" : "\n") + source_ + ":" + std::to_string(line + 1) + ":" +
              std::to_string(column + 1) + ": " + message;
  }
  void AddWarning(int, google::protobuf::io::ColumnNumber, const std::string&) override {}
  std::string errors;  // one line per error, in order

 private:
  std::string source_;
};

}  // namespace gsa::config_detail
