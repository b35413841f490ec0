#include "gsa/trainer/adamw.h"

#include <cmath>

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

}  // namespace gsa
