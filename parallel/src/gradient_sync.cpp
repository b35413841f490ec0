#include "gsa/parallel/gradient_sync.h"

#include "gsa/parallel/phase_timers.h"
#include "gsa/runtime/error.h"

namespace gsa {

GradientSync::GradientSync(std::vector<at::Tensor> params, std::shared_ptr<Communicator> comm, int64_t bucket_bytes,
                           double scale)
    : params_(std::move(params)), comm_(std::move(comm)), scale_(scale) {
  GSA_CHECK(bucket_bytes > 0, "gradient bucket size must be > 0, got ", bucket_bytes);
  where_.resize(params_.size());
  // Reverse order: the last layers' gradients arrive first.
  int64_t bucket_used = 0;
  for (size_t i = params_.size(); i-- > 0;) {
    const at::Tensor& p = params_[i];
    GSA_CHECK(p.requires_grad(), "GradientSync: parameter ", i, " does not require grad");
    const int64_t bytes = p.numel() * static_cast<int64_t>(p.element_size());
    const bool fits = !buckets_.empty() && bucket_used + bytes <= bucket_bytes &&
                      params_[buckets_.back().params.front()].scalar_type() == p.scalar_type();
    if (!fits) {
      buckets_.emplace_back();
      bucket_used = 0;
    }
    Bucket& b = buckets_.back();
    where_[i] = {buckets_.size() - 1, b.params.size()};
    b.params.push_back(i);
    b.offsets.push_back(b.size);
    b.size += p.numel();
    bucket_used += bytes;
  }
  for (Bucket& b : buckets_) {
    const at::Tensor& first = params_[b.params.front()];
    b.buffer = at::zeros({b.size}, first.options().requires_grad(false));
  }
  reset_step();
  for (size_t i = 0; i < params_.size(); ++i) {
    hook_ids_.push_back(params_[i].register_hook([this, i](const at::Tensor& grad) {
      on_gradient(i, grad);
      return grad;
    }));
  }
}

GradientSync::~GradientSync() {
  for (size_t i = 0; i < params_.size(); ++i) params_[i].remove_hook(hook_ids_[i]);
}

void GradientSync::reset_step() {
  for (Bucket& b : buckets_) {
    b.pending = static_cast<int64_t>(b.params.size());
    b.arrived.assign(b.params.size(), false);
    b.handle.reset();
  }
  step_open_ = false;
}

void GradientSync::on_gradient(size_t param_index, const at::Tensor& grad) {
  if (!sync_) return;  // an earlier micro-batch: autograd accumulates it into .grad()
  if (!step_open_) {  // the first gradient of a backward pass
    step_open_ = true;
    started_in_backward_ = 0;
  }
  auto [bucket_index, slot] = where_[param_index];
  Bucket& b = buckets_[bucket_index];
  GSA_CHECK(!b.arrived[slot], "GradientSync: parameter ", param_index, " got two gradients in one backward");
  at::Tensor slot_buffer = b.buffer.narrow(0, b.offsets[slot], grad.numel());
  slot_buffer.copy_(grad.reshape({-1}));
  const at::Tensor& accumulated = params_[param_index].grad();  // earlier micro-batches' (zero_grad: zeros)
  if (accumulated.defined()) slot_buffer.add_(accumulated.reshape({-1}));
  b.arrived[slot] = true;
  if (--b.pending == 0) {
    start(b);
    ++started_in_backward_;
  }
}

void GradientSync::start(Bucket& bucket) { bucket.handle = comm_->all_reduce_async(bucket.buffer, ReduceOp::kSum); }

void GradientSync::finish() {
  GSA_CHECK(sync_, "GradientSync::finish during accumulation: set_sync(true) before the last micro-batch");
  ScopedPhase timed(Phase::kGradAllReduce);  // what of the all-reduce backward did not hide
  at::NoGradGuard no_grad;
  for (Bucket& b : buckets_) {
    if (b.handle) continue;
    // Parameters without a gradient this pass count as what earlier micro-batches accumulated, else zero.
    for (size_t s = 0; s < b.params.size(); ++s) {
      if (b.arrived[s]) continue;
      const at::Tensor& p = params_[b.params[s]];
      at::Tensor slot = b.buffer.narrow(0, b.offsets[s], p.numel());
      if (p.grad().defined()) {
        slot.copy_(p.grad().reshape({-1}));
      } else {
        slot.zero_();
      }
    }
    start(b);
  }
  for (Bucket& b : buckets_) {
    b.handle->wait();
    if (scale_ != 1.0) b.buffer.mul_(scale_);
    for (size_t s = 0; s < b.params.size(); ++s) {
      at::Tensor& p = params_[b.params[s]];
      at::Tensor summed = b.buffer.narrow(0, b.offsets[s], p.numel()).view(p.sizes());
      if (p.grad().defined()) {
        p.mutable_grad().copy_(summed);
      } else {
        p.mutable_grad() = summed.clone();
      }
    }
  }
  reset_step();
}

}  // namespace gsa
