// Bootstrap: MPI start-up, the local rank -> GPU choice, and the world / sp / dp communicators of the mesh
// (DESIGN.md section 5).
//
// Contract:
// - MpiSession initialises MPI once per process (MPI_Init_thread, asking for MPI_THREAD_MULTIPLE because the
//   autograd engine may run backward collectives on its device thread) and finalises it on destruction. The
//   local rank comes from MPI_Comm_split_type(MPI_COMM_TYPE_SHARED).
// - make_process_groups validates world = dp x sp (DeviceMesh::create: the error names every factor), splits
//   the world into sp groups (consecutive ranks, sp innermost) and dp groups (same sp rank), and builds one
//   Communicator per group on the chosen backend. NCCL: the GPU is local_rank % device_count (set as current),
//   and each group's NCCL id is made by its rank 0 and broadcast over MPI.
// - run_rank_main runs a rank's work; an exception prints "gsa: rank R: <what>" and aborts the job
//   (MPI_Abort), so the other ranks exit too instead of hanging in their next collective.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <ATen/ATen.h>

#include "gsa/parallel/communicator.h"
#include "gsa/parallel/device_mesh.h"

namespace gsa {

enum class CommBackend { kMpi, kNccl };

// "mpi" | "nccl" -> backend; throws gsa::Error naming the value otherwise.
CommBackend parse_comm_backend(const std::string& name);

class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int world_rank() const { return world_rank_; }
  int world_size() const { return world_size_; }
  int local_rank() const { return local_rank_; }  // rank among the processes of this node
  int local_size() const { return local_size_; }

  // Prints "gsa: rank R: message" to stderr and aborts every rank of the job with `code`.
  [[noreturn]] static void abort(int code, const std::string& message);

 private:
  int world_rank_ = 0, world_size_ = 1, local_rank_ = 0, local_size_ = 1;
  bool owns_mpi_ = false;
};

struct ProcessGroups {
  DeviceMesh mesh;
  CommBackend backend = CommBackend::kMpi;
  at::Device device{at::kCPU};          // where this rank's tensors live (CPU for MPI, its GPU for NCCL)
  std::shared_ptr<Communicator> world;  // every rank
  std::shared_ptr<Communicator> sp;     // the ranks sharing this rank's sequences
  std::shared_ptr<Communicator> dp;     // the replicas of this rank's shard
};

ProcessGroups make_process_groups(const MpiSession& session, int64_t dp, int64_t sp, CommBackend backend,
                                  std::chrono::milliseconds timeout);

// Runs fn(); on an exception prints it with the rank and aborts the job. Returns fn's result.
int run_rank_main(const std::function<int()>& fn);

}  // namespace gsa
