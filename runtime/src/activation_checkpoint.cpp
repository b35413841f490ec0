#include "gsa/runtime/activation_checkpoint.h"

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>

#include <memory>
#include <utility>

namespace gsa {
namespace {

// The backward node of one checkpointed call: recomputes fn(x) and back-propagates grad_out through it.
class RecomputeBackward final : public torch::autograd::Node {
 public:
  RecomputeBackward(std::function<at::Tensor(const at::Tensor&)> fn, at::Tensor x)
      : fn_(std::move(fn)), x_(std::move(x)) {}

  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override {
    if (!grads[0].defined()) return {at::Tensor()};
    at::Tensor input = x_.detach().requires_grad_(true);
    at::Tensor output;
    {
      at::AutoGradMode enable(true);
      output = fn_(input);
    }
    torch::autograd::backward({output}, {grads[0]});
    at::Tensor grad_x = input.grad();
    fn_ = nullptr;  // once: free what the closure holds
    x_ = at::Tensor();
    return {grad_x};
  }
  std::string name() const override { return "gsa::RecomputeBackward"; }

 private:
  std::function<at::Tensor(const at::Tensor&)> fn_;
  at::Tensor x_;  // detached input
};

}  // namespace

at::Tensor checkpointed(std::function<at::Tensor(const at::Tensor&)> fn, const at::Tensor& x) {
  if (!at::GradMode::is_enabled()) return fn(x);
  at::Tensor output;
  {
    at::NoGradGuard no_grad;
    output = fn(x);
  }
  auto node = std::shared_ptr<RecomputeBackward>(new RecomputeBackward(std::move(fn), x.detach()),
                                                 torch::autograd::deleteNode);
  node->set_next_edges(torch::autograd::collect_next_edges(x));
  torch::autograd::set_history(output, node);
  return output;
}

}  // namespace gsa
