#include "gsa/runtime/chunked_loss.h"

#include <vector>

#include "gsa/runtime/activation_checkpoint.h"
#include "gsa/runtime/error.h"

namespace gsa {

at::Tensor chunked_loss_sum(const LlamaModel& model, const at::Tensor& hidden, const at::Tensor& labels,
                            int64_t chunk, at::Tensor* argmax) {
  GSA_CHECK(chunk >= 1, "chunked_loss_sum: chunk ", chunk, " must be >= 1");
  GSA_CHECK(hidden.dim() == 3 && labels.dim() == 2 && labels.size(0) == hidden.size(0) &&
                labels.size(1) == hidden.size(1),
            "chunked_loss_sum: hidden ", hidden.sizes(), " and labels ", labels.sizes(), " must be [B, T, H] and [B, T]");
  const std::vector<at::Tensor> parts = hidden.split(chunk, 1);                              // [B, c, H] each
  const std::vector<at::Tensor> part_labels = labels.to(hidden.device()).split(chunk, 1);  // [B, c] each
  std::vector<at::Tensor> part_argmax;
  if (argmax != nullptr) {
    *argmax = at::empty(labels.sizes(), labels.options().dtype(at::kLong).device(hidden.device()));
    part_argmax = argmax->split(chunk, 1);                                                 // [B, c] views
  }
  at::Tensor total;
  for (size_t i = 0; i < parts.size(); ++i) {
    const at::Tensor target = part_labels[i].reshape({-1});                                  // [B * c]
    // The first run of the function is the forward (checkpointed() reruns it in backward): it fills argmax.
    at::Tensor fill = argmax != nullptr ? part_argmax[i] : at::Tensor();
    at::Tensor loss = checkpointed(
        [&model, target, fill](const at::Tensor& h) mutable {
          const at::Tensor logits = model.head_logits(h);                                     // [B, c, V] fp32
          if (fill.defined()) {
            fill.copy_(logits.detach().argmax(-1));
            fill = at::Tensor();
          }
          return at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}), target, {}, at::Reduction::Sum,
                                        /*ignore_index=*/-100);
        },
        parts[i]);
    total = total.defined() ? total + loss : loss;
  }
  return total;
}

}  // namespace gsa
