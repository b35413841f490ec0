#include "gsa/runtime/chunked_loss.h"

#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <vector>

#include "gsa/runtime/error.h"

namespace gsa {
namespace {

// [B*c, V] fp32 logits of a chunk of hidden rows, as LlamaModel::head_logits computes them.
at::Tensor chunk_logits(const at::Tensor& h, const at::Tensor& weight) {
  return at::matmul(h, weight.t()).to(at::kFloat);
}

// The LM head and the summed cross-entropy as one autograd node: the forward keeps no logits, the backward
// recomputes each chunk's and adds its share of d hidden and d weight (the weight's gradient summed over the
// chunks in fp32, so the weight gets one gradient per backward: GradientSync's rule, and a tied embedding's two
// uses still meet in one AccumulateGrad).
class ChunkedHeadLoss : public torch::autograd::Function<ChunkedHeadLoss> {
 public:
  // hidden [B, T, H], weight [V, H], labels [B, T] int64 on hidden's device, chunk rows of [B*T] at a time;
  // argmax [B, T] filled (or empty: not asked) -> scalar fp32 loss sum.
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& hidden,
                                                const at::Tensor& weight, const at::Tensor& labels, int64_t chunk,
                                                at::Tensor argmax) {
    at::NoGradGuard no_grad;
    const at::Tensor flat = hidden.reshape({-1, hidden.size(-1)});                         // [B*T, H]
    const at::Tensor targets = labels.reshape({-1});                                       // [B*T]
    const at::Tensor flat_argmax = argmax.numel() > 0 ? argmax.view({-1}) : at::Tensor();  // empty: not asked
    at::Tensor total = at::zeros({}, hidden.options().dtype(at::kFloat));
    for (int64_t first = 0; first < flat.size(0); first += chunk) {
      const int64_t n = std::min(chunk, flat.size(0) - first);
      const at::Tensor logits = chunk_logits(flat.narrow(0, first, n), weight);  // [n, V]
      total += at::cross_entropy_loss(logits, targets.narrow(0, first, n), {}, at::Reduction::Sum, -100);
      if (flat_argmax.defined()) flat_argmax.narrow(0, first, n).copy_(logits.argmax(-1));
    }
    ctx->save_for_backward({hidden, weight, labels});
    ctx->saved_data["chunk"] = chunk;
    return {total};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &hidden = saved[0], &weight = saved[1], &labels = saved[2];
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const at::Tensor flat = hidden.reshape({-1, hidden.size(-1)});  // [B*T, H]
    const at::Tensor targets = labels.reshape({-1});
    const at::Tensor grad = grads[0].to(at::kFloat);                                      // scalar
    at::Tensor d_hidden = at::empty_like(flat);                                           // [B*T, H]
    at::Tensor d_weight = at::zeros(weight.sizes(), weight.options().dtype(at::kFloat));  // [V, H]
    for (int64_t first = 0; first < flat.size(0); first += chunk) {
      const int64_t n = std::min(chunk, flat.size(0) - first);
      const at::Tensor h = flat.narrow(0, first, n), target = targets.narrow(0, first, n);
      // d loss / d logits = softmax - one_hot(target) on labelled rows, 0 elsewhere.
      at::Tensor d_logits = at::softmax(chunk_logits(h, weight), -1);  // [n, V] fp32
      const at::Tensor labelled = target != -100;
      d_logits.scatter_add_(1, target.clamp_min(0).view({n, 1}), at::full({n, 1}, -1.0f, d_logits.options()));
      d_logits.mul_(labelled.view({n, 1}).to(at::kFloat)).mul_(grad);  // in place: [n, V] is the big one
      const at::Tensor d_cast = d_logits.to(weight.scalar_type());     // as .to(kFloat)'s backward
      d_hidden.narrow(0, first, n).copy_(at::matmul(d_cast, weight));
      d_weight += at::matmul(d_cast.t(), h).to(at::kFloat);  // model-dtype product, fp32 sum over chunks
    }
    return {d_hidden.view(hidden.sizes()), d_weight.to(weight.scalar_type()), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor chunked_loss_sum(const LlamaModel& model, const at::Tensor& hidden, const at::Tensor& labels, int64_t chunk,
                            at::Tensor* argmax) {
  GSA_CHECK(chunk >= 1, "chunked_loss_sum: chunk ", chunk, " must be >= 1");
  GSA_CHECK(
      hidden.dim() == 3 && labels.dim() == 2 && labels.size(0) == hidden.size(0) && labels.size(1) == hidden.size(1),
      "chunked_loss_sum: hidden ", hidden.sizes(), " and labels ", labels.sizes(), " must be [B, T, H] and [B, T]");
  // An autograd function takes no undefined tensor: "no argmax" travels as an empty one.
  at::Tensor predictions = at::empty({0}, hidden.options().dtype(at::kLong));
  if (argmax != nullptr) {
    predictions = at::empty(labels.sizes(), labels.options().dtype(at::kLong).device(hidden.device()));
    *argmax = predictions;
  }
  return ChunkedHeadLoss::apply(hidden, model.head_weight(), labels.to(hidden.device(), at::kLong), chunk,
                                predictions)[0];
}

}  // namespace gsa
