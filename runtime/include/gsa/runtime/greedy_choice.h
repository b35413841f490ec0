// Sampler's greedy choice as one kernel where the logits are (kernels/greedy_choice.h; the CPU twin on the CPU):
// logits [V] (bf16, fp16 or fp32, contiguous), forbidden_ids [F] int64 on the same device (ids never chosen),
// ids >= id_limit never chosen either; out [2] int64 on the same device gets {id, has_nan}: the id the masked
// row's argmax gives and 1 when an allowed logit is NaN. workspace: greedy_choice_workspace(device), kept by the
// caller for its launches (they leave it zero; two launches that share it must not overlap). Nothing waits for
// the device: a captured CUDA graph may hold it. greedy_choice_supported(V) says whether the kernel takes a
// vocabulary of V ids.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace gsa {

bool greedy_choice_supported(int64_t vocab);
at::Tensor greedy_choice_workspace(at::Device device);  // zeroed device memory for greedy_choice's CTAs
void greedy_choice(const at::Tensor& logits, const at::Tensor& forbidden_ids, int64_t id_limit, const at::Tensor& out,
                   const at::Tensor& workspace);

}  // namespace gsa
