#include "gsa/trainer/adamw.h"

#include <cmath>

#include "gsa/runtime/error.h"

namespace gsa {

AdamW::AdamW(const TensorMap& params, const AdamWOptions& options) : params_(params), options_(options) {
  at::NoGradGuard no_grad;
  for (const auto& [name, p] : params_) {
    exp_avg_[name] = at::zeros(p.sizes(), p.options().dtype(at::kFloat));
    exp_avg_sq_[name] = at::zeros(p.sizes(), p.options().dtype(at::kFloat));
    if (options_.master_weights && p.scalar_type() != at::kFloat && p.scalar_type() != at::kDouble) {
      masters_[name] = p.detach().to(at::kFloat, /*non_blocking=*/false, /*copy=*/true);
    }
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
    if (clip_scale_ != 1.0) g = g * clip_scale_;
    at::Tensor& m = exp_avg_[name];
    at::Tensor& v = exp_avg_sq_[name];
    m.mul_(options_.beta1).add_(g, 1.0 - options_.beta1);
    v.mul_(options_.beta2).addcmul_(g, g, 1.0 - options_.beta2);
    at::Tensor update = (m / bias1) / ((v / bias2).sqrt() + options_.eps);
    auto master = masters_.find(name);
    if (master != masters_.end()) {
      at::Tensor& w = master->second;  // fp32
      if (options_.weight_decay > 0) update = update + options_.weight_decay * w;
      w.sub_(lr * update);
      p.copy_(w);  // rounds to the parameter's dtype
    } else {
      if (options_.weight_decay > 0) update = update + options_.weight_decay * p.to(at::kFloat);
      p.sub_((lr * update).to(p.scalar_type()));
    }
  }
  clip_scale_ = 1.0;
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
  clip_scale_ = max_norm > 0 && norm > max_norm ? max_norm / (norm + 1e-6) : 1.0;
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
  clip_scale_ = 1.0;
}

TensorMap AdamW::master_weights() const {
  TensorMap out = params_;
  for (const auto& [name, w] : masters_) out[name] = w;
  return out;
}

void AdamW::load_master_weights(const TensorMap& weights) {
  at::NoGradGuard no_grad;
  GSA_CHECK(weights.size() == params_.size(), "master weights: ", weights.size(), " tensors, expected ",
            params_.size(), " (one per parameter)");
  for (auto& [name, p] : params_) {
    auto it = weights.find(name);
    GSA_CHECK(it != weights.end(), "master weights: missing '", name, "'");
    GSA_CHECK(it->second.sizes() == p.sizes(), "master weights: '", name, "' has shape ", it->second.sizes(),
              ", expected ", p.sizes());
    auto master = masters_.find(name);
    if (master != masters_.end()) master->second.copy_(it->second);
    p.copy_(it->second);
  }
}

}  // namespace gsa
