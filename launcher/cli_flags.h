// Command-line flag parsing for the gsa subcommands.
//
// Contract:
//  * Accepted forms: "--name value", "--name=value", bare "--switch", and positional words. A flag followed by
//    a word that does not start with "--" (or is not "-h") takes that word as its value, so positional words
//    must come BEFORE any flag ("gsa inspect layout --chunk 4", never "gsa inspect --switch layout").
//    A lone "--" ends flag parsing: everything after it is positional. Negative numbers may be given as values
//    ("--offset -3" works because "-3" does not start with "--").
//  * Every lookup (has/get_*/require_*/get_all) marks the flag as used. finish() throws gsa::Error naming the
//    first flag that no lookup asked for ("unknown flag --foo for gsa inspect layout"); call it after all
//    lookups and before doing any work.
//  * Values that fail to parse (bad int, bad double, bad bool, bad list item) throw gsa::Error naming the flag
//    and the value; require_* throw "gsa X: missing --name" when the flag is absent. A flag given twice keeps
//    its last value for the scalar getters; get_all returns every occurrence in order.
//  * help() is true when --help or -h appears anywhere; it marks them used.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gsa::cli {

class Flags {
 public:
  Flags(const std::vector<std::string>& args, std::string command_name);

  bool help() const;                                    // --help or -h present
  bool has(const std::string& name);                    // present at all
  std::string get_string(const std::string& name, const std::string& fallback);
  std::string require_string(const std::string& name);  // throws "gsa X: missing --name"
  int64_t get_int(const std::string& name, int64_t fallback);
  int64_t require_int(const std::string& name);
  double get_double(const std::string& name, double fallback);
  bool get_bool(const std::string& name, bool fallback);      // bare --name = true; --name=false
  std::vector<std::string> get_all(const std::string& name);  // repeated flags, e.g. --set a=b --set c=d
  std::vector<int64_t> get_int_list(const std::string& name,
                                    const std::vector<int64_t>& fallback);  // "2048,4096"; "" = none
  const std::vector<std::string>& positional() const;
  void finish();

  const std::string& command_name() const { return command_name_; }
  // The sub-command word ("layout" in `gsa inspect layout ...`): args[0] when it is not a flag, else "".
  static std::string leading_word(const std::vector<std::string>& args) {
    return !args.empty() && args[0].compare(0, 1, "-") != 0 ? args[0] : "";
  }

 private:
  struct Entry {
    std::string name;   // without the leading "--"
    std::string value;  // empty for a bare switch
    bool has_value = false;
    bool used = false;
  };
  // The last entry named `name` (marking all of them used), or nullptr.
  Entry* find(const std::string& name);
  std::string value_of(const std::string& name, const Entry& entry) const;
  int64_t parse_int(const std::string& name, const std::string& text) const;

  std::string command_name_;
  std::vector<Entry> entries_;
  std::vector<std::string> positional_;
  bool help_ = false;
};

}  // namespace gsa::cli
