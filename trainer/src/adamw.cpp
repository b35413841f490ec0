#include "gsa/trainer/adamw.h"

#include <cmath>

#include "gsa/runtime/error.h"

namespace gsa {

AdamW::AdamW(const TensorMap& params, const AdamWOptions& options) : params_(params), options_(options) {
  for (const auto& [name, p] : params_) {
    exp_avg_[name] = at::zeros(p.sizes(), p.options().dtype(at::kFloat));
    exp_avg_sq_[name] = at::zeros(p.sizes(), p.options().dtype(at::kFloat));
  }
}

void AdamW::step(double lr) {
  at::NoGradGuard no_grad;
  ++step_;
  const double bias1 = 1.0 - std::pow(options_.beta1, static_cast<double>(step_));
  const double bias2 = 1.0 - std::pow(options_.beta2, static_cast<double>(step_));
  for (auto& [name, p] : params_) {
    const at::Tensor& grad = p.grad();
    if (!grad.defined()) continue;
    at::Tensor g = grad.to(at::kFloat);
    at::Tensor& m = exp_avg_[name];
    at::Tensor& v = exp_avg_sq_[name];
    m.mul_(options_.beta1).add_(g, 1.0 - options_.beta1);
    v.mul_(options_.beta2).addcmul_(g, g, 1.0 - options_.beta2);
    at::Tensor update = (m / bias1) / ((v / bias2).sqrt() + options_.eps);
    if (options_.weight_decay > 0) update = update + options_.weight_decay * p.to(at::kFloat);
    p.sub_((lr * update).to(p.scalar_type()));
  }
}

void AdamW::zero_grad() {
  for (auto& [name, p] : params_) {
    if (p.grad().defined()) p.mutable_grad() = at::Tensor();
  }
}

double AdamW::clip_grad_norm(double max_norm) {
  at::NoGradGuard no_grad;
  double total = 0;
  for (auto& [name, p] : params_) {
    if (p.grad().defined()) total += p.grad().to(at::kFloat).pow(2).sum().item<double>();
  }
  const double norm = std::sqrt(total);
  if (max_norm > 0 && norm > max_norm) {
    const double scale = max_norm / (norm + 1e-6);
    for (auto& [name, p] : params_) {
      if (p.grad().defined()) p.mutable_grad().mul_(scale);
    }
  }
  return norm;
}

TensorMap AdamW::state() const {
  TensorMap out;
  for (const auto& [name, m] : exp_avg_) out[name + ".exp_avg"] = m;
  for (const auto& [name, v] : exp_avg_sq_) out[name + ".exp_avg_sq"] = v;
  return out;
}

void AdamW::load_state(const TensorMap& state, int64_t steps) {
  GSA_CHECK(steps >= 0, "optimizer state: step count ", steps, " is negative");
  at::NoGradGuard no_grad;
  GSA_CHECK(state.size() == exp_avg_.size() + exp_avg_sq_.size(), "optimizer state: ", state.size(),
            " tensors, expected ", exp_avg_.size() + exp_avg_sq_.size(), " (two moments per parameter)");
  for (auto* moments : {&exp_avg_, &exp_avg_sq_}) {
    const std::string suffix = moments == &exp_avg_ ? ".exp_avg" : ".exp_avg_sq";
    for (auto& [name, slot] : *moments) {
      auto it = state.find(name + suffix);
      GSA_CHECK(it != state.end(), "optimizer state: missing '", name + suffix, "'");
      GSA_CHECK(it->second.sizes() == slot.sizes(), "optimizer state: '", name + suffix, "' has shape ",
                it->second.sizes(), ", expected ", slot.sizes());
      slot.copy_(it->second);
    }
  }
  step_ = steps;
}

}  // namespace gsa
