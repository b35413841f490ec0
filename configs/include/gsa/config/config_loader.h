// Loads a gsa config: protobuf text format (schema configs/proto/gsa_config.proto) -> gsa::GsaOptions.
//
// Contract:
//  - Steps, in order: parse the text (unknown fields, wrong value types, bad enum names and repeated scalar
//    fields are errors), apply the `--set` overrides left to right, validate every range and cross-field rule
//    documented in options.h (all violations are reported, not just the first), convert to plain structs.
//    A field the text does not set keeps its options.h default.
//  - Every failure throws ConfigError and nothing is returned. The message has one line per problem, each
//    starting with where the bad value came from and naming the field path:
//      `FILE:LINE:COLUMN: gist.levels = 5 is out of range (1..4)`   (LINE and COLUMN are 1-based)
//      `--set gist.levels=9: gist.levels = 9 is out of range (1..4)` (the value came from an override)
//      `FILE: ...`                                                    (a default, or a file that cannot be read)
//    A cross-field problem names both fields.
//  - An override is `a.b.c=value`: the path names a scalar field by its proto/struct names; the value is an
//    integer, a floating-point number, true/false/1/0, a string (taken verbatim, may be empty), or an enum
//    value name (case-insensitive). Unknown paths list the valid field names of the message they stopped in.
//  - options_to_text writes every field; load_config_text(options_to_text(o), ...) returns options equal to o
//    (for valid o; doubles are written with round-trip precision).
//  - load_config_file refuses a directory and a file that sets no field (empty, or only blanks and comments).
//  - No protobuf or LibTorch types here; thread-safe (no mutable global state).
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "gsa/config/options.h"

namespace gsa {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parses a .pbtxt file, applies --set overrides ("a.b.c=value", in order), validates, converts.
// `path` is used verbatim as FILE in error messages.
GsaOptions load_config_file(const std::string& path, const std::vector<std::string>& overrides = {});

// As load_config_file, for text already in memory; `source_name` is FILE in error messages.
GsaOptions load_config_text(const std::string& text, const std::string& source_name,
                            const std::vector<std::string>& overrides = {});

// The embedded demo config: the text of configs/demo.pbtxt, compiled into the library at build time.
const std::string& embedded_demo_config_text();

// Loads embedded_demo_config_text() (FILE in errors: embedded_demo_config_name()).
GsaOptions load_embedded_demo_config(const std::vector<std::string>& overrides = {});
const std::string& embedded_demo_config_name();

// The text format of `options`, every field written (round-trips through load_config_text).
std::string options_to_text(const GsaOptions& options);

}  // namespace gsa
