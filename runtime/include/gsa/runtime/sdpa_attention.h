// Dense causal attention through at::scaled_dot_product_attention: the dense peer of GSA in the training
// benchmark (gsa bench train). On CUDA bf16/fp16 tensors LibTorch picks FlashAttention (or cuDNN / memory-
// efficient attention), so memory stays O(T); on the CPU it is LibTorch's CPU kernel.
//
// Contract: attend() returns softmax(scale * q k^T + causal mask) v for rows that are one gist-free document
// each with no padding (every key position t <= query position); GQA by enable_gqa (query head h reads KV head
// h / (Hq / Hkv)). The caller lays the rows out raw (attention_mode.h, full mode) and of equal length; a
// selective layer (layer_selects) is refused: dense attention does not select.
#pragma once

#include <ATen/ATen.h>

#include "gsa/runtime/llama_model.h"

namespace gsa {

class CausalSdpaAttention final : public LayerAttention {
 public:
  // q [B, Hq, T, D], k, v [B, Hkv, T, D] -> [B, Hq, T, D] in q's dtype.
  at::Tensor attend(int64_t layer, bool layer_selects, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                    double scale) override;
};

}  // namespace gsa
