#include "gsa/trainer/chunked_loss.h"

#include <vector>

#include "gsa/runtime/activation_checkpoint.h"
#include "gsa/runtime/error.h"

namespace gsa {

at::Tensor chunked_loss_sum(const LlamaModel& model, const at::Tensor& hidden, const at::Tensor& labels,
                            int64_t chunk) {
  GSA_CHECK(chunk >= 1, "chunked_loss_sum: chunk ", chunk, " must be >= 1");
  GSA_CHECK(hidden.dim() == 3 && labels.dim() == 2 && labels.size(0) == hidden.size(0) &&
                labels.size(1) == hidden.size(1),
            "chunked_loss_sum: hidden ", hidden.sizes(), " and labels ", labels.sizes(), " must be [B, T, H] and [B, T]");
  const std::vector<at::Tensor> parts = hidden.split(chunk, 1);                              // [B, c, H] each
  const std::vector<at::Tensor> part_labels = labels.to(hidden.device()).split(chunk, 1);  // [B, c] each
  at::Tensor total;
  for (size_t i = 0; i < parts.size(); ++i) {
    const at::Tensor target = part_labels[i].reshape({-1});                                  // [B * c]
    at::Tensor loss = checkpointed(
        [&model, target](const at::Tensor& h) {
          const at::Tensor logits = model.head_logits(h);                                     // [B, c, V] fp32
          return at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}), target, {}, at::Reduction::Sum,
                                        /*ignore_index=*/-100);
        },
        parts[i]);
    total = total.defined() ? total + loss : loss;
  }
  return total;
}

}  // namespace gsa
