// NcclCommunicator: the Communicator of one NCCL communicator, for CUDA tensors on one GPU (private to
// gsa_parallel; compiled only when GSA_HAVE_NCCL is defined).
//
// Contract (on top of communicator.h):
// - The communicator owns a non-blocking CUDA stream. Each operation records an event on the caller's current
//   stream, makes the comm stream wait for it, issues the NCCL call(s) there and records a done event.
//   all_to_all_v and send_recv are ncclGroupStart / ncclSend / ncclRecv / ncclGroupEnd batches.
// - The handle keeps the tensors alive until wait(), and they are also recorded on the comm stream with the
//   caching allocator, so freeing them on another stream is safe. wait() polls the done event (and
//   ncclCommGetAsyncError) with a short sleep until the deadline, then makes the caller's current stream wait
//   for the done event. Timeout or an asynchronous NCCL error: report, ncclCommAbort, MPI_Abort.
// - Reductions: float, double, bf16, fp16, int64, int32, uint8, int8 natively (bf16 is summed in bf16 by
//   NCCL); bool as uint8 with max (logical or) for both ops. Data movement moves bytes, so any dtype works.
// - Operations are numbered per communicator (#1, #2, ...) for the timeout report.
#pragma once

#ifdef GSA_HAVE_NCCL

#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "comm_check.h"
#include "gsa/parallel/communicator.h"

namespace gsa {

class NcclCommunicator final : public Communicator {
 public:
  // Collective over the ranks of `bootstrap`: its rank 0 makes the NCCL id, MPI_Bcast shares it, and every rank
  // joins with ncclCommInitRank on `device` (a CUDA device). `bootstrap` stays owned by the caller.
  static std::shared_ptr<NcclCommunicator> create(MPI_Comm bootstrap, at::Device device, std::string name);

  NcclCommunicator(ncclComm_t comm, int rank, int size, at::Device device, std::string name);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return name_; }
  at::Device device() const override { return device_; }

  std::unique_ptr<CommHandle> all_reduce_async(at::Tensor tensor, ReduceOp op) override;
  std::unique_ptr<CommHandle> all_gather_async(at::Tensor input, at::Tensor output) override;
  std::unique_ptr<CommHandle> reduce_scatter_async(at::Tensor input, at::Tensor output) override;
  std::unique_ptr<CommHandle> all_to_all_v_async(at::Tensor input, std::vector<int64_t> send_counts, at::Tensor output,
                                                 std::vector<int64_t> recv_counts) override;
  std::unique_ptr<CommHandle> send_recv_async(std::vector<PeerTransfer> sends,
                                              std::vector<PeerTransfer> recvs) override;
  std::unique_ptr<CommHandle> broadcast_async(at::Tensor tensor, int root) override;
  bool can_capture() const override { return true; }
  void fence() override;

 private:
  // Orders `issue` (the NCCL calls, on the stream it is given: stream_) after the caller's current stream; returns
  // the handle. While the caller's stream is capturing a CUDA graph, issues on that stream instead.
  std::unique_ptr<CommHandle> launch(const char* operation, const std::vector<at::Tensor>& tensors,
                                     const std::function<void(cudaStream_t)>& issue);
  // The label of this group's next operation (its sequence number taken): what a timeout or error names.
  detail::OperationLabel next_label(const char* operation);

  ncclComm_t comm_;
  int rank_ = 0;
  int size_ = 1;
  int world_rank_ = 0;
  at::Device device_;
  std::string name_;
  cudaStream_t stream_ = nullptr;
  std::atomic<uint64_t> last_sequence_{0};
};

}  // namespace gsa

#endif  // GSA_HAVE_NCCL
