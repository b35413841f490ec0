// A float64 Llama forward with plain causal attention over raw tokens (tests only: T x T masks): the oracle for
// "an attention mode without gists behaves as the original model". Independent of runtime/: its own RMSNorm,
// RoPE (Hugging Face rotate_half convention, positions 0..T-1) and SwiGLU; attention through dense_attention()
// under the causal mask.
#pragma once

#include <vector>

#include <ATen/ATen.h>

#include "gsa/config/options.h"
#include "gsa/runtime/safetensors.h"

namespace gsa::test {

// params by Hugging Face Llama name (any dtype/device); tokens: one sequence -> logits [T, V] float64 on the CPU.
at::Tensor dense_causal_llama_logits(const ModelOptions& options, const TensorMap& params,
                                     const std::vector<int64_t>& tokens);

}  // namespace gsa::test
