// Communicator's backend-independent helpers: barrier and the small host-integer collectives.
#include "gsa/parallel/communicator.h"

#include "gsa/runtime/error.h"

namespace gsa {

void Communicator::barrier() {
  at::Tensor token = at::zeros({1}, at::TensorOptions().dtype(at::kInt).device(device()));
  all_reduce(token, ReduceOp::kSum);
}

std::vector<int64_t> Communicator::all_gather_ints(const std::vector<int64_t>& values) {
  const auto count = static_cast<int64_t>(values.size());
  at::Tensor input = at::tensor(at::ArrayRef<int64_t>(values), at::TensorOptions().dtype(at::kLong)).to(device());
  at::Tensor output = at::empty({count * size()}, at::TensorOptions().dtype(at::kLong).device(device()));
  all_gather(input, output);
  at::Tensor host = output.cpu();
  const int64_t* data = host.data_ptr<int64_t>();
  return std::vector<int64_t>(data, data + host.numel());
}

int64_t Communicator::all_reduce_int(int64_t value, ReduceOp op) {
  at::Tensor tensor = at::full({1}, value, at::TensorOptions().dtype(at::kLong).device(device()));
  all_reduce(tensor, op);
  return tensor.cpu().item<int64_t>();
}

}  // namespace gsa
