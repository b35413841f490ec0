#include "mpi_communicator.h"

#include <exception>
#include <functional>
#include <utility>

#include "comm_args.h"
#include "gsa/runtime/error.h"

namespace gsa {
namespace {

// One MPI tag for every point-to-point transfer: transfers between two ranks then match in posting order.
constexpr int kSendRecvTag = 7411;

// An MPI operation in flight: its requests, what they read and write, and what to do once they are done.
class MpiHandle final : public CommHandle {
 public:
  explicit MpiHandle(detail::OperationLabel label) : label_(std::move(label)) {}

  ~MpiHandle() override {
    if (waited_) return;
    try {
      wait();
    } catch (const std::exception& error) {
      detail::report_failure_and_abort(label_, str_cat("in the destructor of its handle: ", error.what()));
    }
  }

  void wait() override {
    if (waited_) return;
    waited_ = true;
    const auto deadline = std::chrono::steady_clock::now() + label_.timeout;
    detail::PollBackoff backoff;
    while (true) {
      int done = 0;
      GSA_CHECK_MPI(MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &done, MPI_STATUSES_IGNORE));
      if (done) break;
      if (std::chrono::steady_clock::now() > deadline) detail::report_timeout_and_abort(label_);
      backoff.sleep();
    }
    if (on_complete_) on_complete_();
    keep_alive_.clear();
    count_arrays_.clear();
  }

  // A request slot for the next MPI_I* call.
  MPI_Request* add_request() {
    requests_.push_back(MPI_REQUEST_NULL);
    return &requests_.back();
  }
  void reserve_requests(size_t count) { requests_.reserve(count); }
  void keep_alive(const at::Tensor& tensor) { keep_alive_.push_back(tensor); }
  // An int array MPI reads until completion (all-to-all counts and displacements); stable address.
  const int* hold_ints(std::vector<int> values) {
    count_arrays_.push_back(std::move(values));
    return count_arrays_.back().data();
  }
  void on_complete(std::function<void()> fn) { on_complete_ = std::move(fn); }

 private:
  detail::OperationLabel label_;
  std::vector<MPI_Request> requests_;
  std::vector<at::Tensor> keep_alive_;
  std::vector<std::vector<int>> count_arrays_;
  std::function<void()> on_complete_;
  bool waited_ = false;
};

bool reduced_through_fp32(at::ScalarType type) { return type == at::kBFloat16 || type == at::kHalf; }

// The MPI type that reduces `type` (after bf16/fp16 are widened to fp32).
MPI_Datatype reduction_type(at::ScalarType type, const std::string& group) {
  switch (type) {
    case at::kFloat: return MPI_FLOAT;
    case at::kDouble: return MPI_DOUBLE;
    case at::kLong: return MPI_INT64_T;
    case at::kInt: return MPI_INT32_T;
    case at::kByte: return MPI_UINT8_T;
    case at::kChar: return MPI_INT8_T;
    case at::kBool: return MPI_C_BOOL;
    default: break;
  }
  throw Error(str_cat(group, ": no MPI reduction for dtype ", type));
}

MPI_Op reduction_op(ReduceOp op, at::ScalarType type) {
  if (type == at::kBool) return MPI_LOR;  // MPI reduces C bools only logically: sum and max are both "or"
  return op == ReduceOp::kSum ? MPI_SUM : MPI_MAX;
}

// The MPI type that moves elements of `type` unchanged: an unsigned integer of the same width.
MPI_Datatype movement_type(at::ScalarType type, const std::string& group) {
  switch (c10::elementSize(type)) {
    case 1: return MPI_UINT8_T;
    case 2: return MPI_UINT16_T;
    case 4: return MPI_UINT32_T;
    case 8: return MPI_UINT64_T;
    default: break;
  }
  throw Error(str_cat(group, ": no MPI transfer type for dtype ", type, " (", c10::elementSize(type), " bytes)"));
}

// Byte address of element `offset` of a contiguous tensor.
void* element_address(const at::Tensor& tensor, int64_t offset) {
  return static_cast<char*>(tensor.data_ptr()) + offset * static_cast<int64_t>(tensor.element_size());
}

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm, std::string name) : comm_(comm), name_(std::move(name)) {
  GSA_CHECK(comm_ != MPI_COMM_NULL, "MpiCommunicator ", name_, ": null MPI communicator");
  GSA_CHECK_MPI(MPI_Comm_rank(comm_, &rank_));
  GSA_CHECK_MPI(MPI_Comm_size(comm_, &size_));
  GSA_CHECK_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &world_rank_));
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

detail::OperationLabel MpiCommunicator::next_label(const char* operation) {
  return {world_rank_, name_, operation, ++last_sequence_, timeout()};
}

std::unique_ptr<CommHandle> MpiCommunicator::all_reduce_async(at::Tensor tensor, ReduceOp op) {
  detail::check_all_reduce(*this, tensor);
  const int count = detail::checked_int(tensor.numel(), *this, "all_reduce", "element count");
  auto handle = std::make_unique<MpiHandle>(next_label("all_reduce"));
  at::Tensor reduced = tensor;
  if (reduced_through_fp32(tensor.scalar_type())) {
    reduced = tensor.to(at::kFloat);
    handle->on_complete([tensor, reduced]() mutable { tensor.copy_(reduced); });
  }
  const MPI_Datatype type = reduction_type(reduced.scalar_type(), name_);
  handle->keep_alive(tensor);
  handle->keep_alive(reduced);
  GSA_CHECK_MPI(MPI_Iallreduce(MPI_IN_PLACE, reduced.data_ptr(), count, type, reduction_op(op, reduced.scalar_type()),
                               comm_, handle->add_request()));
  return handle;
}

std::unique_ptr<CommHandle> MpiCommunicator::all_gather_async(at::Tensor input, at::Tensor output) {
  detail::check_all_gather(*this, input, output);
  const int count = detail::checked_int(input.numel(), *this, "all_gather", "element count");
  const MPI_Datatype type = movement_type(input.scalar_type(), name_);
  auto handle = std::make_unique<MpiHandle>(next_label("all_gather"));
  handle->keep_alive(input);
  handle->keep_alive(output);
  // Input already in its slot of the output (a gather in place): MPI needs MPI_IN_PLACE for that.
  const bool in_place = input.numel() > 0 && input.data_ptr() == element_address(output, rank_ * input.numel());
  const void* send = in_place ? MPI_IN_PLACE : input.data_ptr();
  GSA_CHECK_MPI(MPI_Iallgather(send, count, type, output.data_ptr(), count, type, comm_, handle->add_request()));
  return handle;
}

std::unique_ptr<CommHandle> MpiCommunicator::reduce_scatter_async(at::Tensor input, at::Tensor output) {
  detail::check_reduce_scatter(*this, input, output);
  const int count = detail::checked_int(output.numel(), *this, "reduce_scatter", "element count");
  auto handle = std::make_unique<MpiHandle>(next_label("reduce_scatter"));
  at::Tensor send = input, receive = output;
  if (reduced_through_fp32(input.scalar_type())) {
    send = input.to(at::kFloat);
    receive = at::empty(output.sizes(), output.options().dtype(at::kFloat));
    handle->on_complete([output, receive]() mutable { output.copy_(receive); });
  }
  const MPI_Datatype type = reduction_type(send.scalar_type(), name_);
  for (const at::Tensor& t : {input, output, send, receive}) handle->keep_alive(t);
  GSA_CHECK_MPI(MPI_Ireduce_scatter_block(send.data_ptr(), receive.data_ptr(), count, type,
                                          reduction_op(ReduceOp::kSum, send.scalar_type()), comm_,
                                          handle->add_request()));
  return handle;
}

std::unique_ptr<CommHandle> MpiCommunicator::all_to_all_v_async(at::Tensor input, std::vector<int64_t> send_counts,
                                                                at::Tensor output, std::vector<int64_t> recv_counts) {
  const detail::AllToAllLayout layout = detail::check_all_to_all_v(*this, input, send_counts, output, recv_counts);
  const char* op = "all_to_all_v";
  std::vector<int> send_elements, send_offsets, recv_elements, recv_offsets;
  for (int peer = 0; peer < size_; ++peer) {
    send_elements.push_back(detail::checked_int(layout.send_elements[peer], *this, op, "send element count"));
    send_offsets.push_back(detail::checked_int(layout.send_offsets[peer], *this, op, "send element offset"));
    recv_elements.push_back(detail::checked_int(layout.recv_elements[peer], *this, op, "receive element count"));
    recv_offsets.push_back(detail::checked_int(layout.recv_offsets[peer], *this, op, "receive element offset"));
  }
  const MPI_Datatype type = movement_type(input.scalar_type(), name_);
  auto handle = std::make_unique<MpiHandle>(next_label(op));
  handle->keep_alive(input);
  handle->keep_alive(output);
  const int* send_counts_held = handle->hold_ints(std::move(send_elements));
  const int* send_offsets_held = handle->hold_ints(std::move(send_offsets));
  const int* recv_counts_held = handle->hold_ints(std::move(recv_elements));
  const int* recv_offsets_held = handle->hold_ints(std::move(recv_offsets));
  GSA_CHECK_MPI(MPI_Ialltoallv(input.data_ptr(), send_counts_held, send_offsets_held, type, output.data_ptr(),
                               recv_counts_held, recv_offsets_held, type, comm_, handle->add_request()));
  return handle;
}

std::unique_ptr<CommHandle> MpiCommunicator::send_recv_async(std::vector<PeerTransfer> sends,
                                                             std::vector<PeerTransfer> recvs) {
  detail::check_send_recv(*this, sends, recvs);
  auto handle = std::make_unique<MpiHandle>(next_label("send_recv"));
  handle->reserve_requests(sends.size() + recvs.size());
  // Receives first, so that matching sends (also to this rank itself) find them posted.
  for (const PeerTransfer& receive : recvs) {
    const int count = detail::checked_int(receive.tensor.numel(), *this, "send_recv", "receive element count");
    handle->keep_alive(receive.tensor);
    GSA_CHECK_MPI(MPI_Irecv(receive.tensor.data_ptr(), count, movement_type(receive.tensor.scalar_type(), name_),
                            receive.peer, kSendRecvTag, comm_, handle->add_request()));
  }
  for (const PeerTransfer& send : sends) {
    const int count = detail::checked_int(send.tensor.numel(), *this, "send_recv", "send element count");
    handle->keep_alive(send.tensor);
    GSA_CHECK_MPI(MPI_Isend(send.tensor.data_ptr(), count, movement_type(send.tensor.scalar_type(), name_), send.peer,
                            kSendRecvTag, comm_, handle->add_request()));
  }
  return handle;
}

std::unique_ptr<CommHandle> MpiCommunicator::broadcast_async(at::Tensor tensor, int root) {
  detail::check_broadcast(*this, tensor, root);
  const int count = detail::checked_int(tensor.numel(), *this, "broadcast", "element count");
  auto handle = std::make_unique<MpiHandle>(next_label("broadcast"));
  handle->keep_alive(tensor);
  GSA_CHECK_MPI(MPI_Ibcast(tensor.data_ptr(), count, movement_type(tensor.scalar_type(), name_), root, comm_,
                           handle->add_request()));
  return handle;
}

}  // namespace gsa
