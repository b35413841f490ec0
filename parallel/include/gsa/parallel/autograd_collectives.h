// Collectives that autograd differentiates through (DESIGN.md section 5, "Backward mirrors it"). All work on
// rows (dim 0) of a tensor whose other dims match on every rank.
//
// Contract:
// - all_gather_rows: every rank's x [counts[r], ...] -> [sum counts, ...] in rank order. Backward: the output
//   gradient is summed over ranks and each rank receives the rows it contributed (a reduce-scatter).
// - exchange_rows: a batch of point-to-point row transfers (the halo): x's rows [begin, begin + count) go to each
//   send's peer; the output is the received blocks concatenated in the order of `recvs`. Backward: the received
//   rows' gradients go back to their senders and are added to the sent rows' gradients.
// - all_to_all_rows: x's rows split by send_counts go to the peers in rank order; the output is the rows from
//   every peer in rank order (recv_counts). Backward: the same exchange reversed.
// - The SPMD rule of communicator.h holds for the backward too: every rank must build the same sequence of these
//   ops with inputs that require grad on every rank or on none (derive empty inputs from a tensor with grad, never
//   from a fresh zeros()), and every output must reach the loss on every rank (see selective_to_grid). Then every
//   rank's backward runs the same collectives in the same order: LibTorch's engine runs ready nodes highest
//   sequence number first and gradients only flow from later-created to earlier-created nodes, so the backward
//   collectives run in exactly the reverse of their creation order, whatever local ops differ between ranks.
// - The communicator must outlive the backward pass.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

#include "gsa/parallel/communicator.h"

namespace gsa {

struct RowSend {
  int peer = 0;
  int64_t begin = 0;  // first row of x
  int64_t count = 0;
};

struct RowRecv {
  int peer = 0;
  int64_t count = 0;
};

struct RowExchange {
  std::vector<RowSend> sends;
  std::vector<RowRecv> recvs;
  int64_t received_rows() const;
};

at::Tensor all_gather_rows(const at::Tensor& x, Communicator& comm, const std::vector<int64_t>& counts);
at::Tensor exchange_rows(const at::Tensor& x, Communicator& comm, const RowExchange& exchange);
at::Tensor all_to_all_rows(const at::Tensor& x, Communicator& comm, const std::vector<int64_t>& send_counts,
                           const std::vector<int64_t>& recv_counts);

}  // namespace gsa
