// NcclCommunicator (nccl_communicator.h). Without GSA_HAVE_NCCL this translation unit is empty.
#ifdef GSA_HAVE_NCCL

#include "nccl_communicator.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <utility>

#include "comm_args.h"
#include "gsa/runtime/error.h"

namespace gsa {
namespace {

const char* last_error_text(ncclComm_t comm) {
  const char* text = ncclGetLastError(comm);
  return text != nullptr ? text : "no detail";
}

// An NCCL operation in flight: the event after its work on the comm stream and the tensors it uses.
class NcclHandle final : public CommHandle {
 public:
  NcclHandle(detail::OperationLabel label, ncclComm_t comm, at::Device device)
      : label_(std::move(label)), comm_(comm), device_(device) {
    c10::cuda::CUDAGuard guard(device_);
    GSA_CHECK_CUDA(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming));
    GSA_CHECK_CUDA(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
  }

  ~NcclHandle() override {
    if (!waited_ && issued_) {
      try {
        wait();
      } catch (const std::exception& error) {
        detail::report_failure_and_abort(label_, str_cat("in the destructor of its handle: ", error.what()),
                                         [this] { ncclCommAbort(comm_); });
      }
    }
    c10::cuda::CUDAGuard guard(device_);
    cudaEventDestroy(ready_);  // released once pending work on them completes
    cudaEventDestroy(done_);
  }

  void wait() override {
    if (waited_) return;
    waited_ = true;
    c10::cuda::CUDAGuard guard(device_);
    const auto deadline = std::chrono::steady_clock::now() + label_.timeout;
    detail::PollBackoff backoff;
    while (true) {
      const cudaError_t state = cudaEventQuery(done_);
      if (state == cudaSuccess) break;
      if (state != cudaErrorNotReady) GSA_CHECK_CUDA(state);
      ncclResult_t async_error = ncclSuccess;
      GSA_CHECK_NCCL(ncclCommGetAsyncError(comm_, &async_error));
      if (async_error != ncclSuccess && async_error != ncclInProgress) {
        detail::report_failure_and_abort(
            label_,
            str_cat("NCCL asynchronous error: ", ncclGetErrorString(async_error), " (", last_error_text(comm_), ")"),
            [this] { ncclCommAbort(comm_); });
      }
      if (std::chrono::steady_clock::now() > deadline) {
        detail::report_timeout_and_abort(label_, [this] { ncclCommAbort(comm_); });
      }
      backoff.sleep();
    }
    GSA_CHECK_CUDA(cudaStreamWaitEvent(at::cuda::getCurrentCUDAStream(device_.index()).stream(), done_, 0));
    keep_alive_.clear();
  }

  cudaEvent_t ready_event() const { return ready_; }
  cudaEvent_t done_event() const { return done_; }
  void mark_issued() { issued_ = true; }
  void keep_alive(const at::Tensor& tensor) { keep_alive_.push_back(tensor); }

 private:
  detail::OperationLabel label_;
  ncclComm_t comm_;
  at::Device device_;
  cudaEvent_t ready_ = nullptr;
  cudaEvent_t done_ = nullptr;
  std::vector<at::Tensor> keep_alive_;
  bool issued_ = false;  // the done event was recorded: wait() has something to wait for
  bool waited_ = false;
};

// An operation captured into a CUDA graph: ordered on the captured stream, complete when the stream gets there.
class InStreamHandle final : public CommHandle {
 public:
  void wait() override {}
};

ncclDataType_t reduction_type(at::ScalarType type, const std::string& group) {
  switch (type) {
    case at::kFloat: return ncclFloat32;
    case at::kDouble: return ncclFloat64;
    case at::kBFloat16: return ncclBfloat16;
    case at::kHalf: return ncclFloat16;
    case at::kLong: return ncclInt64;
    case at::kInt: return ncclInt32;
    case at::kByte: return ncclUint8;
    case at::kChar: return ncclInt8;
    case at::kBool: return ncclUint8;
    default: break;
  }
  throw Error(str_cat(group, ": no NCCL reduction for dtype ", type));
}

ncclRedOp_t reduction_op(ReduceOp op, at::ScalarType type) {
  if (type == at::kBool) return ncclMax;  // bools stay 0/1: sum and max are both "or"
  return op == ReduceOp::kSum ? ncclSum : ncclMax;
}

// Data movement in bytes: any dtype, and NCCL's size_t counts. Empty operations issue no NCCL call (the same
// on every rank, as sizes match by contract) but still get their events.
size_t byte_count(const at::Tensor& tensor) { return static_cast<size_t>(tensor.nbytes()); }

char* byte_address(const at::Tensor& tensor, int64_t element_offset) {
  return static_cast<char*>(tensor.data_ptr()) + element_offset * static_cast<int64_t>(tensor.element_size());
}

}  // namespace

std::shared_ptr<NcclCommunicator> NcclCommunicator::create(MPI_Comm bootstrap, at::Device device, std::string name) {
  GSA_CHECK(device.is_cuda() && device.has_index(), name, ": NCCL needs a CUDA device with an index, got ", device);
  int rank = 0, size = 1;
  GSA_CHECK_MPI(MPI_Comm_rank(bootstrap, &rank));
  GSA_CHECK_MPI(MPI_Comm_size(bootstrap, &size));
  ncclUniqueId id;
  if (rank == 0) GSA_CHECK_NCCL(ncclGetUniqueId(&id));
  GSA_CHECK_MPI(MPI_Bcast(&id, static_cast<int>(sizeof(id)), MPI_BYTE, 0, bootstrap));
  c10::cuda::CUDAGuard guard(device);
  ncclComm_t comm = nullptr;
  GSA_CHECK_NCCL(ncclCommInitRank(&comm, size, id, rank));
  return std::make_shared<NcclCommunicator>(comm, rank, size, device, std::move(name));
}

NcclCommunicator::NcclCommunicator(ncclComm_t comm, int rank, int size, at::Device device, std::string name)
    : comm_(comm), rank_(rank), size_(size), device_(device), name_(std::move(name)) {
  world_rank_ = detail::world_rank_or_unknown();
  c10::cuda::CUDAGuard guard(device_);
  GSA_CHECK_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
}

NcclCommunicator::~NcclCommunicator() {
  // No throwing here: at process exit the CUDA context may already be gone, so results are ignored.
  c10::cuda::CUDAGuard guard(device_);
  if (stream_ != nullptr) cudaStreamSynchronize(stream_);
  ncclCommDestroy(comm_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

detail::OperationLabel NcclCommunicator::next_label(const char* operation) {
  return {world_rank_, name_, operation, ++last_sequence_, timeout()};
}

std::unique_ptr<CommHandle> NcclCommunicator::launch(const char* operation, const std::vector<at::Tensor>& tensors,
                                                     const std::function<void(cudaStream_t)>& issue) {
  c10::cuda::CUDAGuard guard(device_);
  detail::OperationLabel label = next_label(operation);
  const cudaStream_t caller = at::cuda::getCurrentCUDAStream(device_.index()).stream();
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  GSA_CHECK_CUDA(cudaStreamIsCapturing(caller, &capture));
  if (capture != cudaStreamCaptureStatusNone) {
    // Captured into a CUDA graph: the operation joins the captured stream itself, ordered by it like any kernel;
    // nothing to poll (the replay's caller watches the deadline with fence()).
    issue(caller);
    return std::make_unique<InStreamHandle>();
  }
  auto handle = std::make_unique<NcclHandle>(std::move(label), comm_, device_);
  GSA_CHECK_CUDA(cudaEventRecord(handle->ready_event(), caller));
  GSA_CHECK_CUDA(cudaStreamWaitEvent(stream_, handle->ready_event(), 0));
  issue(stream_);
  GSA_CHECK_CUDA(cudaEventRecord(handle->done_event(), stream_));
  handle->mark_issued();
  const c10::cuda::CUDAStream comm_stream = c10::cuda::getStreamFromExternal(stream_, device_.index());
  for (const at::Tensor& tensor : tensors) {
    c10::cuda::CUDACachingAllocator::recordStream(tensor.storage().data_ptr(), comm_stream);
    handle->keep_alive(tensor);
  }
  return handle;
}

void NcclCommunicator::fence() {
  c10::cuda::CUDAGuard guard(device_);
  NcclHandle handle(next_label("fence (a replayed CUDA graph)"), comm_, device_);
  GSA_CHECK_CUDA(cudaEventRecord(handle.done_event(), at::cuda::getCurrentCUDAStream(device_.index()).stream()));
  handle.mark_issued();
  handle.wait();
}

std::unique_ptr<CommHandle> NcclCommunicator::all_reduce_async(at::Tensor tensor, ReduceOp op) {
  detail::check_all_reduce(*this, tensor);
  const ncclDataType_t type = reduction_type(tensor.scalar_type(), name_);
  const ncclRedOp_t nccl_op = reduction_op(op, tensor.scalar_type());
  return launch("all_reduce", {tensor}, [&](cudaStream_t stream) {
    if (tensor.numel() == 0) return;
    GSA_CHECK_NCCL(ncclAllReduce(tensor.data_ptr(), tensor.data_ptr(), static_cast<size_t>(tensor.numel()), type,
                                 nccl_op, comm_, stream));
  });
}

std::unique_ptr<CommHandle> NcclCommunicator::all_gather_async(at::Tensor input, at::Tensor output) {
  detail::check_all_gather(*this, input, output);
  return launch("all_gather", {input, output}, [&](cudaStream_t stream) {
    if (input.numel() == 0) return;
    GSA_CHECK_NCCL(ncclAllGather(input.data_ptr(), output.data_ptr(), byte_count(input), ncclUint8, comm_, stream));
  });
}

std::unique_ptr<CommHandle> NcclCommunicator::reduce_scatter_async(at::Tensor input, at::Tensor output) {
  detail::check_reduce_scatter(*this, input, output);
  const ncclDataType_t type = reduction_type(input.scalar_type(), name_);
  const ncclRedOp_t nccl_op = reduction_op(ReduceOp::kSum, input.scalar_type());
  return launch("reduce_scatter", {input, output}, [&](cudaStream_t stream) {
    if (output.numel() == 0) return;
    GSA_CHECK_NCCL(ncclReduceScatter(input.data_ptr(), output.data_ptr(), static_cast<size_t>(output.numel()), type,
                                     nccl_op, comm_, stream));
  });
}

std::unique_ptr<CommHandle> NcclCommunicator::all_to_all_v_async(at::Tensor input, std::vector<int64_t> send_counts,
                                                                 at::Tensor output, std::vector<int64_t> recv_counts) {
  const detail::AllToAllLayout layout = detail::check_all_to_all_v(*this, input, send_counts, output, recv_counts);
  const auto element_size = static_cast<size_t>(input.element_size());
  return launch("all_to_all_v", {input, output}, [&](cudaStream_t stream) {
    GSA_CHECK_NCCL(ncclGroupStart());
    for (int peer = 0; peer < size_; ++peer) {
      if (layout.send_elements[peer] > 0) {
        GSA_CHECK_NCCL(ncclSend(byte_address(input, layout.send_offsets[peer]),
                                static_cast<size_t>(layout.send_elements[peer]) * element_size, ncclUint8, peer, comm_,
                                stream));
      }
      if (layout.recv_elements[peer] > 0) {
        GSA_CHECK_NCCL(ncclRecv(byte_address(output, layout.recv_offsets[peer]),
                                static_cast<size_t>(layout.recv_elements[peer]) * element_size, ncclUint8, peer, comm_,
                                stream));
      }
    }
    GSA_CHECK_NCCL(ncclGroupEnd());
  });
}

std::unique_ptr<CommHandle> NcclCommunicator::send_recv_async(std::vector<PeerTransfer> sends,
                                                              std::vector<PeerTransfer> recvs) {
  detail::check_send_recv(*this, sends, recvs);
  std::vector<at::Tensor> tensors;
  for (const auto* list : {&sends, &recvs}) {
    for (const PeerTransfer& transfer : *list) tensors.push_back(transfer.tensor);
  }
  return launch("send_recv", tensors, [&](cudaStream_t stream) {
    GSA_CHECK_NCCL(ncclGroupStart());
    for (const PeerTransfer& receive : recvs) {
      if (receive.tensor.numel() == 0) continue;
      GSA_CHECK_NCCL(
          ncclRecv(receive.tensor.data_ptr(), byte_count(receive.tensor), ncclUint8, receive.peer, comm_, stream));
    }
    for (const PeerTransfer& send : sends) {
      if (send.tensor.numel() == 0) continue;
      GSA_CHECK_NCCL(ncclSend(send.tensor.data_ptr(), byte_count(send.tensor), ncclUint8, send.peer, comm_, stream));
    }
    GSA_CHECK_NCCL(ncclGroupEnd());
  });
}

std::unique_ptr<CommHandle> NcclCommunicator::broadcast_async(at::Tensor tensor, int root) {
  detail::check_broadcast(*this, tensor, root);
  return launch("broadcast", {tensor}, [&](cudaStream_t stream) {
    if (tensor.numel() == 0) return;
    GSA_CHECK_NCCL(
        ncclBroadcast(tensor.data_ptr(), tensor.data_ptr(), byte_count(tensor), ncclUint8, root, comm_, stream));
  });
}

}  // namespace gsa

#endif  // GSA_HAVE_NCCL
