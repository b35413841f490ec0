#include "comm_args.h"

#include <limits>

#include "gsa/runtime/error.h"

namespace gsa::detail {

void check_comm_tensor(const Communicator& comm, const at::Tensor& tensor, const char* operation, const char* role) {
  GSA_CHECK(tensor.defined(), comm.name(), ": ", operation, ": the ", role, " tensor is undefined");
  GSA_CHECK(tensor.is_contiguous(), comm.name(), ": ", operation, ": the ", role, " tensor ", tensor.sizes(),
            " must be contiguous");
  const at::Device expected = comm.device();
  const bool on_device = expected.is_cpu() ? tensor.device().is_cpu() : tensor.device() == expected;
  GSA_CHECK(on_device, comm.name(), ": ", operation, ": the ", role, " tensor is on ", tensor.device(),
            ", this communicator works on ", expected);
}

int64_t row_elements(const at::Tensor& tensor) {
  GSA_CHECK(tensor.dim() >= 1, "a tensor of rows needs dim >= 1, got a 0-dim tensor");
  int64_t elements = 1;
  for (int64_t d = 1; d < tensor.dim(); ++d) elements *= tensor.size(d);
  return elements;
}

int checked_int(int64_t value, const Communicator& comm, const char* operation, const char* what) {
  GSA_CHECK(value >= 0 && value <= std::numeric_limits<int>::max(), comm.name(), ": ", operation, ": ", what, " ",
            value, " does not fit the int counts of MPI");
  return static_cast<int>(value);
}

void check_all_reduce(const Communicator& comm, const at::Tensor& tensor) {
  check_comm_tensor(comm, tensor, "all_reduce", "in/out");
}

void check_all_gather(const Communicator& comm, const at::Tensor& input, const at::Tensor& output) {
  check_comm_tensor(comm, input, "all_gather", "input");
  check_comm_tensor(comm, output, "all_gather", "output");
  GSA_CHECK(input.scalar_type() == output.scalar_type(), comm.name(), ": all_gather: input dtype ", input.scalar_type(),
            " != output dtype ", output.scalar_type());
  GSA_CHECK(output.numel() == comm.size() * input.numel(), comm.name(), ": all_gather: output has ", output.numel(),
            " elements, expected group size ", comm.size(), " x input ", input.numel());
}

void check_reduce_scatter(const Communicator& comm, const at::Tensor& input, const at::Tensor& output) {
  check_comm_tensor(comm, input, "reduce_scatter", "input");
  check_comm_tensor(comm, output, "reduce_scatter", "output");
  GSA_CHECK(input.scalar_type() == output.scalar_type(), comm.name(), ": reduce_scatter: input dtype ",
            input.scalar_type(), " != output dtype ", output.scalar_type());
  GSA_CHECK(input.numel() == comm.size() * output.numel(), comm.name(), ": reduce_scatter: input has ", input.numel(),
            " elements, expected group size ", comm.size(), " x output ", output.numel());
}

void check_broadcast(const Communicator& comm, const at::Tensor& tensor, int root) {
  check_comm_tensor(comm, tensor, "broadcast", "in/out");
  GSA_CHECK(root >= 0 && root < comm.size(), comm.name(), ": broadcast: root ", root, " outside group size ",
            comm.size());
}

void check_send_recv(const Communicator& comm, const std::vector<PeerTransfer>& sends,
                     const std::vector<PeerTransfer>& recvs) {
  for (const auto* list : {&sends, &recvs}) {
    const char* role = list == &sends ? "send" : "receive";
    for (const PeerTransfer& transfer : *list) {
      check_comm_tensor(comm, transfer.tensor, "send_recv", role);
      GSA_CHECK(transfer.peer >= 0 && transfer.peer < comm.size(), comm.name(), ": send_recv: ", role, " peer ",
                transfer.peer, " outside group size ", comm.size());
    }
  }
}

AllToAllLayout check_all_to_all_v(const Communicator& comm, const at::Tensor& input,
                                  const std::vector<int64_t>& send_counts, const at::Tensor& output,
                                  const std::vector<int64_t>& recv_counts) {
  check_comm_tensor(comm, input, "all_to_all_v", "input");
  check_comm_tensor(comm, output, "all_to_all_v", "output");
  GSA_CHECK(input.scalar_type() == output.scalar_type(), comm.name(), ": all_to_all_v: input dtype ",
            input.scalar_type(), " != output dtype ", output.scalar_type());
  GSA_CHECK(input.dim() >= 1 && output.dim() >= 1, comm.name(), ": all_to_all_v: input and output need dim >= 1");
  const auto group_size = static_cast<size_t>(comm.size());
  GSA_CHECK(send_counts.size() == group_size && recv_counts.size() == group_size, comm.name(),
            ": all_to_all_v: ", send_counts.size(), " send counts and ", recv_counts.size(),
            " receive counts, expected one per rank (", group_size, ")");
  AllToAllLayout layout;
  layout.row_elements = row_elements(input);
  GSA_CHECK(row_elements(output) == layout.row_elements, comm.name(), ": all_to_all_v: output rows of ",
            row_elements(output), " elements != input rows of ", layout.row_elements);
  int64_t send_rows = 0, recv_rows = 0;
  for (size_t peer = 0; peer < group_size; ++peer) {
    GSA_CHECK(send_counts[peer] >= 0 && recv_counts[peer] >= 0, comm.name(), ": all_to_all_v: negative count for peer ",
              peer, " (send ", send_counts[peer], ", receive ", recv_counts[peer], ")");
    layout.send_offsets.push_back(send_rows * layout.row_elements);
    layout.send_elements.push_back(send_counts[peer] * layout.row_elements);
    layout.recv_offsets.push_back(recv_rows * layout.row_elements);
    layout.recv_elements.push_back(recv_counts[peer] * layout.row_elements);
    send_rows += send_counts[peer];
    recv_rows += recv_counts[peer];
  }
  GSA_CHECK(send_rows == input.size(0), comm.name(), ": all_to_all_v: send counts add up to ", send_rows,
            " rows, the input has ", input.size(0));
  GSA_CHECK(recv_rows == output.size(0), comm.name(), ": all_to_all_v: receive counts add up to ", recv_rows,
            " rows, the output has ", output.size(0));
  return layout;
}

}  // namespace gsa::detail
