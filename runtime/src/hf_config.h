// config.json of a Hugging Face Llama / Qwen2 model <-> gsa::ModelOptions, private to the runtime (gsa import
// and gsa export; the accepted keys are listed in gsa/runtime/hf_checkpoint.h).
#pragma once

#include <optional>
#include <string>

#include "gsa/config/options.h"

namespace gsa {

// The model options config.json (text, `source` names it in errors) describes; dtype stays at its default (the
// importer picks it from the weights). Throws gsa::Error naming the source and the key.
ModelOptions model_options_from_hf_config(const std::string& text, const std::string& source);

// config.json text for `options` that transformers' AutoConfig / AutoModelForCausalLM load; the legacy
// top-level rope_theta / rope_scaling keys (read by transformers 4 and 5 alike). bos/eos ids when known.
std::string hf_config_json(const ModelOptions& options, std::optional<int64_t> bos_id, std::optional<int64_t> eos_id);

}  // namespace gsa
