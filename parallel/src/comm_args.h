// Argument checks shared by the Communicator backends (private to gsa_parallel).
//
// Contract: every check throws gsa::Error naming the group, the operation and the offending tensor/size, and
// runs before any communication is started, so a bad call fails on the caller's rank without leaving a
// half-started operation behind. Sizes are in elements; all_to_all_v counts are in rows of dim 0, where a row
// holds the product of dims 1.. (so a [0, d] tensor still has rows of d elements).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "gsa/parallel/communicator.h"

namespace gsa::detail {

// Defined, contiguous, on the communicator's device kind (CPU for MPI; the communicator's GPU for NCCL).
void check_comm_tensor(const Communicator& comm, const at::Tensor& tensor, const char* operation, const char* role);

// Elements per row of dim 0: product of dims 1.. (1 for a 1-D tensor). The tensor must have dim >= 1.
int64_t row_elements(const at::Tensor& tensor);

// value as an int (MPI counts); throws when it does not fit.
int checked_int(int64_t value, const Communicator& comm, const char* operation, const char* what);

void check_all_reduce(const Communicator& comm, const at::Tensor& tensor);
void check_all_gather(const Communicator& comm, const at::Tensor& input, const at::Tensor& output);
void check_reduce_scatter(const Communicator& comm, const at::Tensor& input, const at::Tensor& output);
void check_broadcast(const Communicator& comm, const at::Tensor& tensor, int root);
void check_send_recv(const Communicator& comm, const std::vector<PeerTransfer>& sends,
                     const std::vector<PeerTransfer>& recvs);

// The element layout of one all_to_all_v call, after its checks.
struct AllToAllLayout {
  int64_t row_elements = 1;
  std::vector<int64_t> send_offsets;  // in elements, per peer
  std::vector<int64_t> send_elements;
  std::vector<int64_t> recv_offsets;
  std::vector<int64_t> recv_elements;
};
AllToAllLayout check_all_to_all_v(const Communicator& comm, const at::Tensor& input,
                                  const std::vector<int64_t>& send_counts, const at::Tensor& output,
                                  const std::vector<int64_t>& recv_counts);

}  // namespace gsa::detail
