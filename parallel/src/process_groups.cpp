// Bootstrap (process_groups.h): MPI start-up, the mesh's MPI communicators, and their MPI or NCCL backends.
#include "gsa/parallel/process_groups.h"

#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <utility>

#include "comm_check.h"
#include "gsa/runtime/error.h"
#include "mpi_communicator.h"
#include "nccl_communicator.h"

#ifdef GSA_HAVE_NCCL
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace gsa {
namespace {

const char* backend_label(CommBackend backend) { return backend == CommBackend::kNccl ? "NCCL" : "MPI"; }

// Owns an MPI communicator until it is handed to a Communicator (frees it if bootstrap throws first).
class OwnedMpiComm {
 public:
  OwnedMpiComm() = default;
  ~OwnedMpiComm() {
    if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  }
  OwnedMpiComm(const OwnedMpiComm&) = delete;
  OwnedMpiComm& operator=(const OwnedMpiComm&) = delete;
  MPI_Comm* out() { return &comm_; }
  MPI_Comm get() const { return comm_; }
  MPI_Comm release() { return std::exchange(comm_, MPI_COMM_NULL); }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
};

// The GPU of this rank: local_rank % device_count, made current.
at::Device choose_cuda_device(const MpiSession& session) {
#ifdef GSA_HAVE_NCCL
  const int device_count = static_cast<int>(c10::cuda::device_count());
  GSA_CHECK(device_count > 0, "the NCCL backend needs a CUDA device; rank ", session.world_rank(), " sees none");
  const auto index = static_cast<c10::DeviceIndex>(session.local_rank() % device_count);
  c10::cuda::set_device(index);
  return at::Device(at::kCUDA, index);
#else
  (void)session;
  throw Error("this build has no NCCL (the nccl backend needs CUDA and NCCL at configure time)");
#endif
}

// One Communicator over `group` on `backend`; the MPI backend takes the MPI communicator over.
std::shared_ptr<Communicator> make_communicator(OwnedMpiComm& group, CommBackend backend, const at::Device& device,
                                                const std::string& group_label, std::chrono::milliseconds timeout) {
  const std::string name = str_cat(group_label, " (", backend_label(backend), ")");
  std::shared_ptr<Communicator> communicator;
  if (backend == CommBackend::kMpi) {
    communicator = std::make_shared<MpiCommunicator>(group.get(), name);
    group.release();
  } else {
#ifdef GSA_HAVE_NCCL
    communicator = NcclCommunicator::create(group.get(), device, name);  // `group` is freed by its owner
#else
    throw Error("this build has no NCCL (the nccl backend needs CUDA and NCCL at configure time)");
#endif
  }
  communicator->set_timeout(timeout);
  return communicator;
}

}  // namespace

CommBackend parse_comm_backend(const std::string& name) {
  if (name == "mpi") return CommBackend::kMpi;
  if (name == "nccl") return CommBackend::kNccl;
  throw Error(str_cat("unknown communication backend '", name, "' (expected mpi or nccl)"));
}

MpiSession::MpiSession(int* argc, char*** argv) {
  int initialized = 0;
  GSA_CHECK_MPI(MPI_Initialized(&initialized));
  if (!initialized) {
    int provided = MPI_THREAD_SINGLE;
    GSA_CHECK_MPI(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided));
    owns_mpi_ = true;
    // Backward collectives may run on the autograd engine's device thread: one thread at a time is the minimum.
    GSA_CHECK(provided >= MPI_THREAD_SERIALIZED, "MPI provides thread level ", provided,
              ", gsa needs at least MPI_THREAD_SERIALIZED");
  }
  GSA_CHECK_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &world_rank_));
  GSA_CHECK_MPI(MPI_Comm_size(MPI_COMM_WORLD, &world_size_));
  MPI_Comm node = MPI_COMM_NULL;
  GSA_CHECK_MPI(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank_, MPI_INFO_NULL, &node));
  GSA_CHECK_MPI(MPI_Comm_rank(node, &local_rank_));
  GSA_CHECK_MPI(MPI_Comm_size(node, &local_size_));
  GSA_CHECK_MPI(MPI_Comm_free(&node));
}

MpiSession::~MpiSession() {
  if (!owns_mpi_) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void MpiSession::abort(int code, const std::string& message) {
  const int rank = detail::world_rank_or_unknown();
  std::fprintf(stderr, "gsa: rank %d: %s\n", rank, message.c_str());
  std::fflush(stderr);
  std::fflush(stdout);
  if (rank >= 0) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI not running (or MPI_Abort returned): this process is the whole job
}

ProcessGroups make_process_groups(const MpiSession& session, int64_t dp, int64_t sp, CommBackend backend,
                                  std::chrono::milliseconds timeout) {
  ProcessGroups groups;
  groups.mesh = DeviceMesh::create(session.world_size(), session.world_rank(), dp, sp);
  groups.backend = backend;
  if (backend == CommBackend::kNccl) {
    setenv("NCCL_NVLS_ENABLE", "0", /*overwrite=*/0);  // NVLink multicast is forbidden on our machines
    groups.device = choose_cuda_device(session);
  }
  const int rank = static_cast<int>(groups.mesh.rank);
  const int sp_rank = static_cast<int>(groups.mesh.sp_rank());
  const int dp_rank = static_cast<int>(groups.mesh.dp_rank());

  OwnedMpiComm world, sp_group, dp_group;
  GSA_CHECK_MPI(MPI_Comm_dup(MPI_COMM_WORLD, world.out()));
  // sp groups: the consecutive ranks of one replica; dp groups: the ranks holding the same shard.
  GSA_CHECK_MPI(MPI_Comm_split(MPI_COMM_WORLD, /*color=*/dp_rank, /*key=*/rank, sp_group.out()));
  GSA_CHECK_MPI(MPI_Comm_split(MPI_COMM_WORLD, /*color=*/sp_rank, /*key=*/rank, dp_group.out()));

  groups.world = make_communicator(world, backend, groups.device, "world", timeout);
  groups.sp = make_communicator(sp_group, backend, groups.device, str_cat("sp group ", dp_rank), timeout);
  groups.dp = make_communicator(dp_group, backend, groups.device, str_cat("dp group ", sp_rank), timeout);
  return groups;
}

int run_rank_main(const std::function<int()>& fn) {
  try {
    return fn();
  } catch (const std::exception& error) {
    MpiSession::abort(1, error.what());
  } catch (...) {
    MpiSession::abort(1, "unknown exception");
  }
}

}  // namespace gsa
