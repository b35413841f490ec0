#include "gsa/runtime/key_gather.h"

#include <torch/csrc/autograd/custom_function.h>

#include "gsa/runtime/error.h"

namespace gsa {
namespace {

class GatherKeyRows : public torch::autograd::Function<GatherKeyRows> {
 public:
  // x [B, H, T, D], flat [N] row indices of x viewed as [B*H*T, D] -> [N, D]
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                                                const at::Tensor& flat) {
    ctx->save_for_backward({flat});
    ctx->saved_data["sizes"] = x.sizes().vec();
    ctx->saved_data["dtype"] = x.scalar_type();
    return {x.reshape({-1, x.size(3)}).index_select(0, flat)};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const at::Tensor flat = ctx->get_saved_variables()[0];
    const std::vector<int64_t> sizes = ctx->saved_data["sizes"].toIntVector();
    const at::ScalarType dtype = ctx->saved_data["dtype"].toScalarType();
    const at::Tensor& grad = grads[0];  // [N, D]
    const at::ScalarType wide = at::promote_types(dtype, at::kFloat);
    at::Tensor sum = at::zeros({sizes[0] * sizes[1] * sizes[2], sizes[3]}, grad.options().dtype(wide));
    sum.index_add_(0, flat, grad.to(wide));
    return {sum.to(dtype).view(sizes), at::Tensor()};
  }
};

}  // namespace

at::Tensor gather_key_rows(const at::Tensor& x, const at::Tensor& rows, const at::Tensor& heads,
                           const at::Tensor& positions) {
  GSA_CHECK(x.dim() == 4, "gather_key_rows wants x [B, H, T, D], got ", x.sizes());
  const int64_t b = x.size(0), h = x.size(1), t = x.size(2);
  auto check_range = [](const at::Tensor& index, int64_t size, const char* what) {
    if (index.is_cuda() || index.numel() == 0) return;
    GSA_CHECK(index.min().item<int64_t>() >= 0 && index.max().item<int64_t>() < size, "gather_key_rows: a ", what,
              " index lies outside [0, ", size, ")");
  };
  check_range(rows, b, "row");
  check_range(heads, h, "head");
  check_range(positions, t, "position");
  const at::Tensor flat = ((rows * h + heads) * t + positions).to(at::kLong);  // [S...]
  std::vector<int64_t> shape = flat.sizes().vec();
  shape.push_back(x.size(3));
  return GatherKeyRows::apply(x, flat.reshape({-1}).contiguous())[0].view(shape);
}

}  // namespace gsa
