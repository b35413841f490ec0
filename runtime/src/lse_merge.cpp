#include "gsa/runtime/lse_merge.h"

#include "gsa/kernels/lse_merge.h"
#include "gsa/runtime/error.h"
#include "kernel_tensors.h"


namespace gsa {

std::pair<at::Tensor, at::Tensor> lse_merge(const at::Tensor& parts_out, const at::Tensor& parts_lse) {
  // 1. Validate.
  GSA_CHECK(parts_out.defined() && parts_lse.defined(), "lse_merge: parts_out and parts_lse must be defined");
  GSA_CHECK(parts_out.dim() == 3, "lse_merge: parts_out must be [P, R, D], got ", parts_out.sizes());
  GSA_CHECK(parts_lse.dim() == 2, "lse_merge: parts_lse must be [P, R], got ", parts_lse.sizes());
  GSA_CHECK(parts_out.scalar_type() == at::kFloat && parts_lse.scalar_type() == at::kFloat,
            "lse_merge: parts_out and parts_lse must be float32, got ", parts_out.scalar_type(), " and ",
            parts_lse.scalar_type());
  GSA_CHECK(parts_out.device() == parts_lse.device(), "lse_merge: parts_out is on ", parts_out.device(),
            " but parts_lse is on ", parts_lse.device());
  const int64_t P = parts_out.size(0), R = parts_out.size(1), D = parts_out.size(2);
  GSA_CHECK(P >= 1 && D >= 1, "lse_merge: need P >= 1 parts and D >= 1, got parts_out ", parts_out.sizes());
  GSA_CHECK(parts_lse.size(0) == P && parts_lse.size(1) == R, "lse_merge: parts_lse ", parts_lse.sizes(),
            " does not match parts_out ", parts_out.sizes(), " (expected [", P, ", ", R, "])");
  const at::Device device = parts_out.device();
  GSA_CHECK(device.is_cpu() || device.is_cuda(), "lse_merge: unsupported device ", device);

  // 2. Contiguous inputs and fresh outputs, without autograd.
  at::NoGradGuard no_grad;
  const at::Tensor in_out = parts_out.contiguous();  // [P, R, D]
  const at::Tensor in_lse = parts_lse.contiguous();  // [P, R]
  at::Tensor out = at::empty({R, D}, in_out.options());  // [R, D]
  at::Tensor lse = at::empty({R}, in_lse.options());     // [R]

  kernels::LseMergeParams params;
  params.partial_out = in_out.data_ptr<float>();
  params.partial_lse = in_lse.data_ptr<float>();
  params.out = out.data_ptr<float>();
  params.lse = lse.data_ptr<float>();
  params.num_parts = P;
  params.rows = R;
  params.dim = D;

  // 3. Dispatch: the CUDA kernel on the current stream, or the CPU twin.
  const kernels::Status status = run_kernel(
      device, [&](void* stream) { return kernels::lse_merge_cuda(params, stream); },
      [&] { return kernels::lse_merge_reference(params); });
  GSA_CHECK(status == kernels::Status::kOk, "lse_merge: kernel failed on ", device, " for parts_out ",
            parts_out.sizes(), ": ", kernels::status_string(status));
  return {out, lse};
}

}  // namespace gsa
