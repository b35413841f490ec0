// The range and cross-field rules of options.h, checked once after parsing and overrides.
#pragma once

#include <string>
#include <vector>

#include "gsa/config/options.h"
#include "reflection_util.h"

namespace gsa::config_detail {

// The smallest vocabulary the byte tokenizer needs: 256 bytes + pad, bos, eos + 4 gist ids (one per level).
inline constexpr int64_t kMinVocabSize = 256 + 3 + 4;

// Every violated rule, one line each: "<origin>: <field path> = <value> <reason>", the origin from `origins`
// (an override, FILE:LINE:COLUMN, or FILE). Empty when `options` are valid.
std::vector<std::string> validate(const GsaOptions& options, const ValueOrigins& origins);

}  // namespace gsa::config_detail
