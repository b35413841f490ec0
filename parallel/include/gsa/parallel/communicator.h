// Communicator: the collectives of one process group (the sp group, the dp group or the world), with an MPI
// backend for CPU tensors and an NCCL backend for CUDA tensors (DESIGN.md section 5).
//
// Contract:
// - Every member of the group calls the same operations in the same order with matching sizes (the SPMD rule).
//   Sizes are in elements of the tensors' dtype; every tensor passed must be contiguous and on the backend's
//   device kind (MPI: CPU, NCCL: the communicator's CUDA device).
// - Each operation starts asynchronously and returns a CommHandle; wait() blocks until it is complete and its
//   outputs may be read. The synchronous helpers are start + wait.
// - Every wait has a deadline (timeout()). A peer that dies or stalls makes wait() print
//   "gsa: rank R (<group>): <operation> #<sequence> timed out after S s ..." to stderr and abort the whole job
//   (MPI_Abort), so every rank exits non-zero within the timeout; nothing hangs.
// - NCCL: operations run on the communicator's own CUDA stream, ordered after the work already queued on the
//   caller's current stream (an event), and wait() makes the caller's current stream wait for them (another event).
// - CUDA graphs: can_capture() says whether operations may be captured into a graph (NCCL: an operation issued
//   while the caller's current stream captures joins that stream and its wait() does nothing; MPI never). A
//   replayed graph's collectives have no handle to wait on: the caller calls fence() after the replay, which waits
//   for the work queued on its current stream with the same deadline and abort as wait() (a no-op on MPI).
// - all_to_all_v, send_recv: counts are in rows of dim 0 (the row size is the product of the other dims, equal on
//   every rank). Outputs are laid out in peer-rank order.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>

namespace gsa {

enum class ReduceOp { kSum, kMax };

// An operation in flight. Destroying a handle without wait() waits (with the deadline).
class CommHandle {
 public:
  virtual ~CommHandle() = default;
  virtual void wait() = 0;
};

// One point-to-point transfer of a send_recv batch.
struct PeerTransfer {
  int peer = 0;       // group rank of the other side
  at::Tensor tensor;  // the rows to send, or the buffer that receives them
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;   // rank in this group
  virtual int size() const = 0;   // members of this group
  virtual std::string name() const = 0;          // e.g. "sp group 0 (MPI)", used in error messages
  virtual at::Device device() const = 0;         // where tensors must live (CPU for MPI)
  std::chrono::milliseconds timeout() const { return timeout_; }
  void set_timeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }

  // In place: tensor = op over the group's tensors (same shape everywhere). bf16 is reduced in fp32 on MPI.
  virtual std::unique_ptr<CommHandle> all_reduce_async(at::Tensor tensor, ReduceOp op) = 0;
  // output [size * n] <- every rank's input [n] in rank order.
  virtual std::unique_ptr<CommHandle> all_gather_async(at::Tensor input, at::Tensor output) = 0;
  // output [n] <- sum over ranks of input[rank * n : (rank + 1) * n] (input [size * n]).
  virtual std::unique_ptr<CommHandle> reduce_scatter_async(at::Tensor input, at::Tensor output) = 0;
  // input rows [sum send_counts] go to peers in rank order; output rows [sum recv_counts] arrive in rank order.
  virtual std::unique_ptr<CommHandle> all_to_all_v_async(at::Tensor input, std::vector<int64_t> send_counts,
                                                         at::Tensor output, std::vector<int64_t> recv_counts) = 0;
  // A batch of point-to-point sends and receives started together (the halo exchange).
  virtual std::unique_ptr<CommHandle> send_recv_async(std::vector<PeerTransfer> sends,
                                                      std::vector<PeerTransfer> recvs) = 0;
  // In place: tensor = root's tensor.
  virtual std::unique_ptr<CommHandle> broadcast_async(at::Tensor tensor, int root) = 0;
  virtual bool can_capture() const { return false; }
  virtual void fence() {}

  // Synchronous forms.
  void all_reduce(const at::Tensor& tensor, ReduceOp op = ReduceOp::kSum) { all_reduce_async(tensor, op)->wait(); }
  void all_gather(const at::Tensor& input, const at::Tensor& output) { all_gather_async(input, output)->wait(); }
  void reduce_scatter(const at::Tensor& input, const at::Tensor& output) {
    reduce_scatter_async(input, output)->wait();
  }
  void all_to_all_v(const at::Tensor& input, const std::vector<int64_t>& send_counts, const at::Tensor& output,
                    const std::vector<int64_t>& recv_counts) {
    all_to_all_v_async(input, send_counts, output, recv_counts)->wait();
  }
  void send_recv(std::vector<PeerTransfer> sends, std::vector<PeerTransfer> recvs) {
    send_recv_async(std::move(sends), std::move(recvs))->wait();
  }
  void broadcast(const at::Tensor& tensor, int root) { broadcast_async(tensor, root)->wait(); }
  void barrier();

  // Host helpers on small integer vectors (through a tensor on device()).
  std::vector<int64_t> all_gather_ints(const std::vector<int64_t>& values);  // size * values.size(), rank order
  int64_t all_reduce_int(int64_t value, ReduceOp op);

 private:
  std::chrono::milliseconds timeout_{std::chrono::minutes(5)};
};

}  // namespace gsa
