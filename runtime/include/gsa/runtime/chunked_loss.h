// Next-token cross-entropy over a long sequence without its whole logits: the LM head and the loss run on
// `chunk` positions (of the batch's B x T, row-major) at a time as one autograd node, whose backward recomputes
// each chunk's logits, so at most one chunk's [chunk, V] logits (and their softmax) exist at once; at 128K
// positions with Llama-3's 128256-token vocabulary the whole logits would take 67 GB in fp32. The head weight gets
// one gradient per backward (summed over the chunks in fp32): data-parallel gradient sync sees each parameter
// once, and a tied embedding's two uses meet in one accumulation.
//
// Contract: chunked_loss_sum(model, hidden, labels, chunk) equals
// cross_entropy(model.head_logits(hidden), labels, sum, ignore_index -100) up to float summation order, and so do
// its gradients (to hidden and to the head weight); chunk >= 1 (a chunk longer than the sequence is one chunk).
// argmax, when given, receives [B, T] int64: each position's argmax over the logits, taken chunk by chunk in the
// forward pass (no extra application of the head), for accuracy.
#pragma once

#include <cstdint>

#include <ATen/ATen.h>

#include "gsa/runtime/llama_model.h"

namespace gsa {

// hidden: [B, T, H] final-normed hidden states (LlamaModel::forward_hidden); labels: [B, T] int64 (-100: no loss).
// Returns the scalar fp32 sum of the labelled positions' cross-entropy.
at::Tensor chunked_loss_sum(const LlamaModel& model, const at::Tensor& hidden, const at::Tensor& labels, int64_t chunk,
                            at::Tensor* argmax = nullptr);

}  // namespace gsa
