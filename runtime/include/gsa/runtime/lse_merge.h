// LibTorch binding of the log-sum-exp merge kernel (gsa/kernels/lse_merge.h): combines P partial attention
// results of the same R query rows, each normalised by its own softmax denominator, into one.
//
// Contract: parts_out [P, R, D] float32 and parts_lse [P, R] float32 on one device (CPU or CUDA), P >= 1,
// D >= 1, R >= 0. Returns (out [R, D], lse [R]) float32 on that device, with
//   lse[r] = log(sum_p exp(parts_lse[p, r])),  out[r] = sum_p exp(parts_lse[p, r] - lse[r]) * parts_out[p, r];
// a part with lse -inf (empty key set) contributes nothing and its output row is not read; a row whose parts
// are all -inf gets out 0 and lse -inf. CUDA tensors run the CUDA kernel on the current stream; CPU tensors run
// the float64 reference twin. Inputs need not be contiguous. No autograd (inference paths only): the results
// carry no grad_fn. Bad shapes, dtypes or devices and kernel failures throw gsa::Error.
#pragma once

#include <utility>

#include <ATen/ATen.h>

namespace gsa {

std::pair<at::Tensor, at::Tensor> lse_merge(const at::Tensor& parts_out,   // [P, R, D] float32
                                            const at::Tensor& parts_lse);  // [P, R] float32

}  // namespace gsa
