// LocalCommunicator (local_communicator.h): the collectives of a group of one process.
#include "gsa/parallel/local_communicator.h"

#include "comm_args.h"
#include "gsa/runtime/error.h"

namespace gsa {
namespace {

class DoneHandle final : public CommHandle {
 public:
  void wait() override {}
};

std::unique_ptr<CommHandle> done() { return std::make_unique<DoneHandle>(); }

// "cuda" -> "cuda:<current>", as tensors made there report it.
at::Device with_index(at::Device device) {
  if (device.is_cpu() || device.has_index()) return device;
  return at::empty({0}, at::TensorOptions().device(device)).device();
}

}  // namespace

LocalCommunicator::LocalCommunicator(at::Device device) : device_(with_index(device)) {}

std::unique_ptr<CommHandle> LocalCommunicator::all_reduce_async(at::Tensor tensor, ReduceOp /*op*/) {
  detail::check_all_reduce(*this, tensor);
  return done();
}

std::unique_ptr<CommHandle> LocalCommunicator::all_gather_async(at::Tensor input, at::Tensor output) {
  detail::check_all_gather(*this, input, output);
  if (!output.is_same(input)) output.copy_(input.view_as(output));
  return done();
}

std::unique_ptr<CommHandle> LocalCommunicator::reduce_scatter_async(at::Tensor input, at::Tensor output) {
  detail::check_reduce_scatter(*this, input, output);
  if (!output.is_same(input)) output.copy_(input.view_as(output));
  return done();
}

std::unique_ptr<CommHandle> LocalCommunicator::all_to_all_v_async(at::Tensor input, std::vector<int64_t> send_counts,
                                                                  at::Tensor output,
                                                                  std::vector<int64_t> recv_counts) {
  const detail::AllToAllLayout layout = detail::check_all_to_all_v(*this, input, send_counts, output, recv_counts);
  GSA_CHECK(send_counts[0] == recv_counts[0], name(), ": all_to_all_v: sends ", send_counts[0],
            " rows to itself but receives ", recv_counts[0]);
  const int64_t elements = send_counts[0] * layout.row_elements;
  output.reshape({-1}).narrow(0, layout.recv_offsets[0], elements)
      .copy_(input.reshape({-1}).narrow(0, layout.send_offsets[0], elements));
  return done();
}

std::unique_ptr<CommHandle> LocalCommunicator::send_recv_async(std::vector<PeerTransfer> sends,
                                                               std::vector<PeerTransfer> recvs) {
  detail::check_send_recv(*this, sends, recvs);
  GSA_CHECK(sends.size() == recvs.size(), name(), ": send_recv: ", sends.size(), " sends and ", recvs.size(),
            " receives (in a group of one every send is received by this rank)");
  for (size_t i = 0; i < sends.size(); ++i) {
    GSA_CHECK(sends[i].tensor.numel() == recvs[i].tensor.numel(), name(), ": send_recv: transfer ", i, " sends ",
              sends[i].tensor.numel(), " elements into a receive buffer of ", recvs[i].tensor.numel());
    recvs[i].tensor.copy_(sends[i].tensor.view_as(recvs[i].tensor));
  }
  return done();
}

std::unique_ptr<CommHandle> LocalCommunicator::broadcast_async(at::Tensor tensor, int root) {
  detail::check_broadcast(*this, tensor, root);
  return done();
}

ProcessGroups make_single_process_groups(at::Device device) {
  ProcessGroups groups;
  groups.mesh = DeviceMesh::create(1, 0, 1, 1);
  groups.world = std::make_shared<LocalCommunicator>(device);
  groups.device = groups.world->device();
  groups.sp = groups.world;
  groups.dp = groups.world;
  return groups;
}

}  // namespace gsa
