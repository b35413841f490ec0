// gsa.config.GsaConfig (protobuf) <-> gsa::GsaOptions (plain structs), field for field.
#pragma once

#include "gsa/config/options.h"
#include "gsa_config.pb.h"

namespace gsa::config_detail {

// Unset proto fields take their proto defaults, which equal the options.h defaults.
GsaOptions from_proto(const gsa::config::GsaConfig& config);

// Sets every field (so that a printed config lists them all).
gsa::config::GsaConfig to_proto(const GsaOptions& options);

}  // namespace gsa::config_detail
