#include "gsa/trainer/eval_report.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace gsa {
namespace {

std::string fixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", decimals, value);
  return text;
}

std::string exact(double value) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.17g", value);
  return text;
}

// Right-aligned in `width` columns.
std::string cell(const std::string& text, size_t width) {
  return text.size() >= width ? " " + text : std::string(width - text.size(), ' ') + text;
}

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

std::string format_eval_table(const EvalReport& report) {
  std::ostringstream out;
  out << "task " << report.task << ", " << report.samples << " samples per length, seed " << report.seed
      << ", chance accuracy " << fixed(report.chance_accuracy, 4) << "\n";
  if (report.lengths.empty()) return out.str();
  const std::vector<ModeScore>& modes = report.lengths.front().modes;
  const size_t width = 11;
  const size_t group = width * modes.size();
  size_t description = 4;
  for (const LengthResult& row : report.lengths) description = std::max(description, row.description.size());
  std::string line = cell("", 8) + "  " + std::string(description, ' ');
  for (const char* title : {"positions", "accuracy", "answer loss"}) {
    const std::string t = title;  // centred over its group of columns
    const size_t left = (group - t.size()) / 2;
    line += "  " + std::string(left, ' ') + t + std::string(group - t.size() - left, ' ');
  }
  out << line.substr(0, line.find_last_not_of(' ') + 1) << "\n";
  line = cell("length", 8) + "  " + std::string(description - 4, ' ') + "task";
  for (int part = 0; part < 3; ++part) {
    line += "  ";
    for (const ModeScore& m : modes) line += cell(attention_mode_name(m.mode), width);
  }
  out << line << "\n";
  for (const LengthResult& row : report.lengths) {
    line = cell(std::to_string(row.length), 8) + "  " + std::string(description - row.description.size(), ' ') +
           row.description + "  ";
    for (const ModeScore& m : row.modes) line += cell(fixed(m.mean_positions, 0), width);
    line += "  ";
    for (const ModeScore& m : row.modes) line += cell(fixed(m.accuracy, 3), width);
    line += "  ";
    for (const ModeScore& m : row.modes) line += cell(fixed(m.loss, 4), width);
    out << line << "\n";
  }
  return out.str();
}

std::string eval_report_json(const EvalReport& report, const std::string& checkpoint, int ranks) {
  std::ostringstream out;
  out << "{\"task\": " << json_string(report.task) << ", \"samples\": " << report.samples
      << ", \"seed\": " << report.seed << ", \"chance_accuracy\": " << exact(report.chance_accuracy)
      << ", \"checkpoint\": " << json_string(checkpoint) << ", \"ranks\": " << ranks << ",\n \"results\": [";
  for (size_t i = 0; i < report.lengths.size(); ++i) {
    const LengthResult& row = report.lengths[i];
    out << (i ? ",\n  " : "\n  ") << "{\"length\": " << row.length
        << ", \"mean_raw_tokens\": " << exact(row.mean_raw_tokens)
        << ", \"description\": " << json_string(row.description) << ", \"modes\": {";
    for (size_t j = 0; j < row.modes.size(); ++j) {
      const ModeScore& m = row.modes[j];
      out << (j ? ", " : "") << json_string(attention_mode_name(m.mode)) << ": {\"loss\": " << exact(m.loss)
          << ", \"accuracy\": " << exact(m.accuracy) << ", \"mean_positions\": " << exact(m.mean_positions)
          << ", \"seconds\": " << exact(m.seconds) << "}";
    }
    out << "}}";
  }
  out << "\n]}\n";
  return out.str();
}

}  // namespace gsa
