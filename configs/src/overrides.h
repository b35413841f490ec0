// `--set a.b.c=value` overrides, applied to a parsed config by protobuf reflection.
#pragma once

#include <google/protobuf/message.h>

#include <string>

#include "reflection_util.h"

namespace gsa::config_detail {

// Sets the scalar field named by `override_text` ("a.b.c=value") in `root` and records it in `log` under
// `order`. Throws gsa::ConfigError("--set a.b.c=value: <reason>") when the text has no '=', the path is not
// a scalar field (the message lists the valid field names where the walk stopped), or the value does not
// parse as the field's type. Ranges are not checked here (validate.h does).
void apply_override(google::protobuf::Message& root, const std::string& override_text, int order, OverrideLog& log);

}  // namespace gsa::config_detail
