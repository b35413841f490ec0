#include "gsa/runtime/greedy_choice.h"

#include "gsa/kernels/greedy_choice.h"
#include "gsa/runtime/error.h"
#include "kernel_tensors.h"

namespace gsa {

bool greedy_choice_supported(int64_t vocab) { return vocab >= 1 && vocab <= kernels::kGreedyChoiceMaxVocab; }

at::Tensor greedy_choice_workspace(at::Device device) {
  return at::zeros({int64_t(sizeof(kernels::GreedyChoiceWorkspace))}, at::TensorOptions(at::kByte).device(device));
}

void greedy_choice(const at::Tensor& logits, const at::Tensor& forbidden_ids, int64_t id_limit, const at::Tensor& out,
                   const at::Tensor& workspace) {
  GSA_CHECK(logits.dim() == 1 && logits.is_contiguous() && greedy_choice_supported(logits.size(0)),
            "greedy_choice: logits must be one contiguous row of 1 to ", kernels::kGreedyChoiceMaxVocab, " ids, got ",
            logits.sizes());
  GSA_CHECK(forbidden_ids.dim() == 1 && forbidden_ids.scalar_type() == at::kLong && forbidden_ids.is_contiguous() &&
                forbidden_ids.device() == logits.device(),
            "greedy_choice: forbidden ids must be [F] int64 on ", logits.device());
  GSA_CHECK(out.numel() == 2 && out.scalar_type() == at::kLong && out.is_contiguous() && out.device() == logits.device(),
            "greedy_choice: out must be [2] int64 on ", logits.device());
  GSA_CHECK(workspace.scalar_type() == at::kByte &&
                workspace.numel() == int64_t(sizeof(kernels::GreedyChoiceWorkspace)) &&
                workspace.device() == logits.device(),
            "greedy_choice: the workspace must be greedy_choice_workspace(", logits.device(), ")");
  kernels::GreedyChoiceParams p;
  switch (logits.scalar_type()) {
    case at::kBFloat16:
      p.dtype = kernels::LogitType::kBFloat16;
      break;
    case at::kHalf:
      p.dtype = kernels::LogitType::kFloat16;
      break;
    case at::kFloat:
      p.dtype = kernels::LogitType::kFloat32;
      break;
    default:
      GSA_CHECK(false, "greedy_choice: logits must be bf16, fp16 or fp32, got ", logits.scalar_type());
  }
  p.vocab = logits.size(0);
  p.logits = logits.data_ptr();
  p.forbidden = forbidden_ids.numel() > 0 ? forbidden_ids.data_ptr<int64_t>() : nullptr;
  p.forbidden_count = static_cast<int32_t>(forbidden_ids.numel());
  p.id_limit = id_limit;
  p.out = out.data_ptr<int64_t>();
  p.workspace = static_cast<kernels::GreedyChoiceWorkspace*>(workspace.data_ptr());
  const kernels::Status status = run_kernel(
      logits.device(), [&](void* stream) { return kernels::greedy_choice_cuda(p, stream); },
      [&] { return kernels::greedy_choice_reference(p); });
  GSA_CHECK(status == kernels::Status::kOk, "greedy choice failed: ", kernels::status_string(status));
}

}  // namespace gsa
