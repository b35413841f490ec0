// Model fixtures shared by the model-level tests: a tiny Llama configuration and the full-recompute oracle of a
// decode step (the whole layout through one attention plan, the logits of its last position).
#pragma once

#include <ATen/ATen.h>

#include "gsa/config/options.h"
#include "gsa/runtime/gist_layout.h"
#include "gsa/runtime/llama_model.h"

namespace gsa::test {

// 264-token vocabulary (the byte tokenizer's with gists), hidden 32, 3 layers, 4 / 2 heads of dim 8, std 0.2.
ModelOptions tiny_model_options();

// Logits [V] of the last position of `layout` from one forward over the whole layout (no cache, no grad).
at::Tensor full_recompute_last(const LlamaModel& model, const GistLayout& layout, const AttentionOptions& attention);

}  // namespace gsa::test
