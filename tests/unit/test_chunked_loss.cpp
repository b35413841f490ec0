// chunked_loss_sum (runtime/chunked_loss.h) against cross-entropy over the whole logits through autograd: the
// loss, the gradients of the hidden states and of the head weight (tolerance fp32: 1e-5 relative, 1e-4 on CUDA where
// cuBLAS sums in another order), and the argmax it fills, for chunks of 1 position to longer than the batch, cutting
// across rows; on the CPU and on CUDA where a device is present.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "common/model_fixtures.h"
#include "common/tolerance.h"
#include "gsa/runtime/chunked_loss.h"
#include "gsa/runtime/error.h"

namespace gsa {
namespace {

TEST(ChunkedLoss, EqualsTheLossOverWholeLogitsWithItsGradients) {
  for (const at::Device device : test::test_devices()) {
    SCOPED_TRACE(device.str());
    LlamaModel model = LlamaModel::create(test::tiny_model_options(), 7, device);
    model.set_requires_grad(true);
    at::manual_seed(3);
    const at::Tensor hidden0 = at::randn({2, 11, 32}, at::kFloat).to(device);  // [B, T, H]
    at::Tensor labels = at::randint(0, 264, {2, 11}, at::kLong).to(device);    // [B, T]
    labels.index_put_({0, at::indexing::Slice(0, 4)}, -100);
    labels.index_put_({1, 10}, -100);
    const at::Tensor& head = model.parameters().at("lm_head.weight");
    const double rtol = device.is_cuda() ? 1e-4 : 1e-5;

    auto loss_and_grads = [&](const std::function<at::Tensor(const at::Tensor&)>& loss_of) {
      at::Tensor hidden = hidden0.clone().requires_grad_(true);
      head.mutable_grad() = at::Tensor();
      at::Tensor loss = loss_of(hidden);
      loss.backward();
      return std::vector<at::Tensor>{loss.detach(), hidden.grad().clone(), head.grad().clone()};
    };
    const auto oracle = loss_and_grads([&](const at::Tensor& h) {
      const at::Tensor logits = model.head_logits(h);
      return at::cross_entropy_loss(logits.reshape({-1, 264}), labels.reshape({-1}), {}, at::Reduction::Sum, -100);
    });
    const at::Tensor want_argmax = model.head_logits(hidden0).argmax(-1);  // [B, T]
    for (int64_t chunk : {1, 3, 7, 11, 64}) {  // 3 and 7 cut across the rows of the flattened [B * T]
      at::Tensor argmax;
      const auto chunked =
          loss_and_grads([&](const at::Tensor& h) { return chunked_loss_sum(model, h, labels, chunk, &argmax); });
      EXPECT_TRUE(at::equal(argmax, want_argmax)) << "argmax, chunk " << chunk;
      EXPECT_NEAR(chunked[0].item<double>(), oracle[0].item<double>(), rtol * std::abs(oracle[0].item<double>()))
          << "chunk " << chunk;
      EXPECT_TRUE(at::allclose(chunked[1], oracle[1], rtol, 1e-6)) << "hidden gradient, chunk " << chunk;
      EXPECT_TRUE(at::allclose(chunked[2], oracle[2], rtol, 1e-6)) << "head gradient, chunk " << chunk;
    }
    EXPECT_THROW(chunked_loss_sum(model, hidden0, labels, 0), Error);
  }
}

}  // namespace
}  // namespace gsa
