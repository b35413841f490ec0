// Private to gsa_runtime: what the kernel bindings share.
#pragma once

#include <cstdint>
#include <utility>

#include <ATen/ATen.h>

#include "gsa/kernels/kv_rows.h"
#include "gsa/kernels/lse_merge.h"         // Status
#include "gsa/kernels/sparse_attention.h"  // DType
#include "gsa/runtime/error.h"

#ifdef GSA_HAVE_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#endif

namespace gsa {

// t itself when the kernels can read its rows with 16-byte copies (last dim contiguous, every other stride a
// multiple of 8 elements, 16-byte aligned base), else a contiguous copy.
inline at::Tensor rows_for_16_byte_loads(const at::Tensor& t) {
  bool ok = t.stride(-1) == 1 && reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0;
  for (int64_t d = 0; d + 1 < t.dim(); ++d) ok = ok && t.stride(d) % 8 == 0;
  return ok ? t : t.clone(at::MemoryFormat::Contiguous);
}

inline bool is_half_type(at::ScalarType t) { return t == at::kBFloat16 || t == at::kHalf; }

// op's operand `name` is a defined bf16/fp16 tensor on the CPU or a CUDA device.
inline void check_half_operand(const char* op, const char* name, const at::Tensor& t) {
  GSA_CHECK(t.defined(), op, ": ", name, " is undefined");
  GSA_CHECK(is_half_type(t.scalar_type()), op, ": ", name, " must be bf16 or fp16, got ", t.scalar_type());
  GSA_CHECK(t.device().is_cpu() || t.device().is_cuda(), op, ": unsupported device ", t.device(), " of ", name);
}

// op's operand `name` has the dtype and the device of `first` (checked as `first_name`).
inline void check_like(const char* op, const char* name, const at::Tensor& t, const char* first_name,
                       const at::Tensor& first) {
  GSA_CHECK(t.defined(), op, ": ", name, " is undefined");
  GSA_CHECK(t.scalar_type() == first.scalar_type(), op, ": ", name, " is ", t.scalar_type(), " but ", first_name,
            " is ", first.scalar_type());
  GSA_CHECK(t.device() == first.device(), op, ": ", name, " is on ", t.device(), " but ", first_name, " is on ",
            first.device());
}

inline void check_kernel_status(kernels::Status status, const char* op, const at::Device& device) {
  GSA_CHECK(status == kernels::Status::kOk, op, ": kernel failed on ", device, ": ", kernels::status_string(status));
}

// The kernels' element type of a bf16 or fp16 tensor (the callers check it is one of the two).
inline kernels::DType kernel_dtype(const at::Tensor& t) {
  return t.scalar_type() == at::kBFloat16 ? kernels::DType::kBFloat16 : kernels::DType::kFloat16;
}

// The rows of a [B, H, T, D] tensor as the decode-side kernels address them (kernels/kv_rows.h).
inline kernels::KvRows kv_rows_of(const at::Tensor& t) {
  kernels::KvRows rows;
  rows.base = t.data_ptr();
  rows.stride_b = t.stride(0);
  rows.stride_h = t.stride(1);
  rows.row_stride = t.stride(2);
  return rows;
}

// A decode step's RoPE tables as `op`'s operands (rope_append, skinny_rope_linear): cos and sin_rotated hold B rows
// of D, in the dtype and on the device of `like` (named like_name) -> {cos, sin_rotated} [B, D] each, readable by
// 16-byte loads.
inline std::pair<at::Tensor, at::Tensor> rope_table_rows(const char* op, const char* like_name, const at::Tensor& like,
                                                         const at::Tensor& cos, const at::Tensor& sin_rotated,
                                                         int64_t B, int64_t D) {
  check_like(op, "cos", cos, like_name, like);
  check_like(op, "sin_rotated", sin_rotated, like_name, like);
  GSA_CHECK(cos.dim() >= 1 && cos.size(-1) == D && cos.numel() == B * D && sin_rotated.dim() >= 1 &&
                sin_rotated.size(-1) == D && sin_rotated.numel() == B * D,
            op, ": cos and sin_rotated must hold B = ", B, " rows of D = ", D, ", got ", cos.sizes(), " and ",
            sin_rotated.sizes());
  return {rows_for_16_byte_loads(cos.reshape({B, D})), rows_for_16_byte_loads(sin_rotated.reshape({B, D}))};
}

// Where a decode step's k and v rows go, as `op`'s operands: positions [B] int64 on `device` and both caches set
// -> positions [B] contiguous.
inline at::Tensor kv_append_positions(const char* op, const at::Tensor& positions, const kernels::KvRows& k,
                                      const kernels::KvRows& v, int64_t B, const at::Device& device) {
  GSA_CHECK(positions.scalar_type() == at::kLong && positions.numel() == B && positions.device() == device, op,
            ": positions must be ", B, " int64 values on ", device, ", got ", positions.sizes(), " ",
            positions.scalar_type(), " on ", positions.device());
  GSA_CHECK(!k.empty() && !v.empty(), op, ": the K and V cache rows must be set");
  return positions.reshape({B}).contiguous();
}

// Runs one kernel family where its tensors live: cuda(stream) with `device` current, on its current stream, for a
// CUDA device (kNoCuda in a build without CUDA); reference() otherwise (the CPU twin). -> the kernel's status.
template <typename Cuda, typename Reference>
kernels::Status run_kernel(const at::Device& device, Cuda&& cuda, Reference&& reference) {
  if (!device.is_cuda()) return reference();
#ifdef GSA_HAVE_CUDA
  const c10::cuda::CUDAGuard guard(device);
  return cuda(static_cast<void*>(at::cuda::getCurrentCUDAStream(device.index()).stream()));
#else
  (void)cuda;
  return kernels::Status::kNoCuda;
#endif
}

}  // namespace gsa
