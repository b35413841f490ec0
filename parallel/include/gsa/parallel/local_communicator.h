// LocalCommunicator: the Communicator of a group of one process (no MPI), so that a single process runs the
// distributed trainer as dp 1 x sp 1 (trainer.h) with the same code as every rank of a mesh.
//
// Contract: rank() 0, size() 1; tensors live on the device given at construction (CPU or one GPU). Every
// operation is the group-of-one result, done at once (the handle's wait() does nothing): all_reduce leaves the
// tensor as it is, all_gather / reduce_scatter / broadcast copy the input to the output, all_to_all_v and
// send_recv copy rows to this rank itself (send_recv pairs the sends and receives in list order). Arguments are
// checked as by every backend (comm_args.h): a wrong device, size or peer throws gsa::Error naming the group.
// make_single_process_groups(device) is the ProcessGroups of that mesh: world, sp and dp are one
// LocalCommunicator.
#pragma once

#include <memory>
#include <string>

#include <ATen/ATen.h>

#include "gsa/parallel/communicator.h"
#include "gsa/parallel/process_groups.h"

namespace gsa {

class LocalCommunicator final : public Communicator {
 public:
  // device "cuda" without an index means the current GPU (the index tensors get).
  explicit LocalCommunicator(at::Device device);

  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return "single process"; }
  at::Device device() const override { return device_; }

  std::unique_ptr<CommHandle> all_reduce_async(at::Tensor tensor, ReduceOp op) override;
  std::unique_ptr<CommHandle> all_gather_async(at::Tensor input, at::Tensor output) override;
  std::unique_ptr<CommHandle> reduce_scatter_async(at::Tensor input, at::Tensor output) override;
  std::unique_ptr<CommHandle> all_to_all_v_async(at::Tensor input, std::vector<int64_t> send_counts,
                                                 at::Tensor output, std::vector<int64_t> recv_counts) override;
  std::unique_ptr<CommHandle> send_recv_async(std::vector<PeerTransfer> sends,
                                              std::vector<PeerTransfer> recvs) override;
  std::unique_ptr<CommHandle> broadcast_async(at::Tensor tensor, int root) override;

 private:
  at::Device device_;
};

// dp 1 x sp 1 on `device`, without MPI.
ProcessGroups make_single_process_groups(at::Device device);

}  // namespace gsa
