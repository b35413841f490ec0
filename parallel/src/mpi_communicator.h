// MpiCommunicator: the Communicator of one MPI communicator, for CPU tensors (private to gsa_parallel).
//
// Contract (on top of communicator.h):
// - Every operation is an MPI-3 non-blocking call (MPI_Iallreduce, MPI_Iallgather, MPI_Ireduce_scatter_block,
//   MPI_Ialltoallv, MPI_Isend/MPI_Irecv, MPI_Ibcast); the handle keeps the tensors (and MPI's count arrays)
//   alive until wait(), which polls MPI_Testall with a short sleep until done or the deadline (timeout()),
//   where it reports and aborts the job (comm_check.h).
// - Reductions: float, double, int64, int32, uint8, int8 natively; bool as logical or (for both ops);
//   bf16 and fp16 are reduced in an fp32 copy that wait() writes back. Data movement (gather, all-to-all,
//   point-to-point, broadcast) moves raw elements of any 1/2/4/8-byte dtype.
// - send_recv: transfers to the same peer match in the order they are listed (one MPI tag).
// - Operations are numbered per communicator (#1, #2, ...) for the timeout report.
// - Owns the MPI_Comm (freed on destruction unless MPI is already finalised).
#pragma once

#include <mpi.h>

#include <atomic>
#include <string>

#include "comm_check.h"
#include "gsa/parallel/communicator.h"

namespace gsa {

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(MPI_Comm comm, std::string name);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return name_; }
  at::Device device() const override { return at::Device(at::kCPU); }
  MPI_Comm mpi_comm() const { return comm_; }

  std::unique_ptr<CommHandle> all_reduce_async(at::Tensor tensor, ReduceOp op) override;
  std::unique_ptr<CommHandle> all_gather_async(at::Tensor input, at::Tensor output) override;
  std::unique_ptr<CommHandle> reduce_scatter_async(at::Tensor input, at::Tensor output) override;
  std::unique_ptr<CommHandle> all_to_all_v_async(at::Tensor input, std::vector<int64_t> send_counts, at::Tensor output,
                                                 std::vector<int64_t> recv_counts) override;
  std::unique_ptr<CommHandle> send_recv_async(std::vector<PeerTransfer> sends,
                                              std::vector<PeerTransfer> recvs) override;
  std::unique_ptr<CommHandle> broadcast_async(at::Tensor tensor, int root) override;

 private:
  detail::OperationLabel next_label(const char* operation);

  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
  int world_rank_ = 0;
  std::string name_;
  std::atomic<uint64_t> last_sequence_{0};
};

}  // namespace gsa
