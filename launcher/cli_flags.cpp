#include "cli_flags.h"

#include <cerrno>
#include <cstdlib>
#include <utility>

#include "gsa/runtime/error.h"

namespace gsa::cli {
namespace {

bool is_flag_word(const std::string& word) { return word.size() > 2 && word.compare(0, 2, "--") == 0; }
bool is_help_word(const std::string& word) { return word == "--help" || word == "-h"; }

}  // namespace

Flags::Flags(const std::vector<std::string>& args, std::string command_name)
    : command_name_(std::move(command_name)) {
  bool flags_ended = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& word = args[i];
    if (flags_ended) {
      positional_.push_back(word);
      continue;
    }
    if (word == "--") {
      flags_ended = true;
      continue;
    }
    if (is_help_word(word)) {
      help_ = true;
      continue;
    }
    if (!is_flag_word(word)) {
      positional_.push_back(word);
      continue;
    }
    Entry entry;
    const std::string body = word.substr(2);
    const size_t eq = body.find('=');
    if (eq != std::string::npos) {
      entry.name = body.substr(0, eq);
      entry.value = body.substr(eq + 1);
      entry.has_value = true;
    } else {
      entry.name = body;
      if (i + 1 < args.size() && !is_flag_word(args[i + 1]) && !is_help_word(args[i + 1]) &&
          args[i + 1] != "--") {
        entry.value = args[++i];
        entry.has_value = true;
      }
    }
    GSA_CHECK(!entry.name.empty(), "gsa ", command_name_, ": malformed flag '", word, "'");
    entries_.push_back(std::move(entry));
  }
}

bool Flags::help() const { return help_; }

Flags::Entry* Flags::find(const std::string& name) {
  Entry* last = nullptr;
  for (Entry& entry : entries_) {
    if (entry.name == name) {
      entry.used = true;
      last = &entry;
    }
  }
  return last;
}

std::string Flags::value_of(const std::string& name, const Entry& entry) const {
  GSA_CHECK(entry.has_value, "gsa ", command_name_, ": --", name, " needs a value");
  return entry.value;
}

bool Flags::has(const std::string& name) { return find(name) != nullptr; }

std::string Flags::get_string(const std::string& name, const std::string& fallback) {
  const Entry* entry = find(name);
  return entry ? value_of(name, *entry) : fallback;
}

std::string Flags::require_string(const std::string& name) {
  const Entry* entry = find(name);
  GSA_CHECK(entry != nullptr, "gsa ", command_name_, ": missing --", name);
  return value_of(name, *entry);
}

int64_t Flags::parse_int(const std::string& name, const std::string& text) const {
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  GSA_CHECK(!text.empty() && end == text.c_str() + text.size() && errno == 0, "gsa ", command_name_,
            ": --", name, " expects an integer, got '", text, "'");
  return static_cast<int64_t>(value);
}

int64_t Flags::get_int(const std::string& name, int64_t fallback) {
  const Entry* entry = find(name);
  return entry ? parse_int(name, value_of(name, *entry)) : fallback;
}

int64_t Flags::require_int(const std::string& name) { return parse_int(name, require_string(name)); }

double Flags::get_double(const std::string& name, double fallback) {
  const Entry* entry = find(name);
  if (entry == nullptr) return fallback;
  const std::string text = value_of(name, *entry);
  errno = 0;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  GSA_CHECK(!text.empty() && end == text.c_str() + text.size() && errno == 0, "gsa ", command_name_,
            ": --", name, " expects a number, got '", text, "'");
  return value;
}

bool Flags::get_bool(const std::string& name, bool fallback) {
  const Entry* entry = find(name);
  if (entry == nullptr) return fallback;
  if (!entry->has_value) return true;
  const std::string& text = entry->value;
  if (text == "true" || text == "1" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "0" || text == "no" || text == "off") return false;
  throw Error(str_cat("gsa ", command_name_, ": --", name, " expects true or false, got '", text, "'"));
}

std::vector<std::string> Flags::get_all(const std::string& name) {
  std::vector<std::string> values;
  for (Entry& entry : entries_) {
    if (entry.name != name) continue;
    entry.used = true;
    values.push_back(value_of(name, entry));
  }
  return values;
}

std::vector<int64_t> Flags::get_int_list(const std::string& name, const std::vector<int64_t>& fallback) {
  const Entry* entry = find(name);
  if (entry == nullptr) return fallback;
  const std::string text = value_of(name, *entry);
  std::vector<int64_t> values;
  if (text.empty()) return values;  // --name "": an empty list
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    GSA_CHECK(!item.empty(), "gsa ", command_name_, ": --", name, " expects a comma-separated list of integers, got '",
              text, "'");
    values.push_back(parse_int(name, item));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return values;
}

const std::vector<std::string>& Flags::positional() const { return positional_; }

void Flags::finish() {
  for (const Entry& entry : entries_) {
    GSA_CHECK(entry.used, "unknown flag --", entry.name, " for gsa ", command_name_,
              " (see gsa ", command_name_, " --help)");
  }
}

}  // namespace gsa::cli
