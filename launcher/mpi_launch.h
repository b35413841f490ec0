// How the CLI runs as ranks of an mpirun job (train, generate, bench comm, bench sp): detecting the launch, the
// shared communication flags, and starting MPI around a rank's work.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "cli_flags.h"
#include "gsa/parallel/process_groups.h"

namespace gsa::cli {

// True when the launcher (Open MPI's OMPI_COMM_WORLD_SIZE, or a PMI launcher's PMI_SIZE) started more than one
// process.
bool launched_by_mpirun();

struct CommFlags {
  CommBackend backend = CommBackend::kMpi;
  std::string backend_name;        // "mpi" | "nccl"
  std::chrono::seconds timeout{0};
};

// Reads --backend (mpi|nccl; default nccl when LibTorch sees CUDA, else mpi) and the deadline flag
// `timeout_flag` in seconds (>= 1). Bad values throw gsa::Error naming the flag.
CommFlags read_comm_flags(Flags& flags, const std::string& timeout_flag, int64_t default_timeout_s);

// Starts MPI for this process and runs body as one rank of the job; an exception on any rank prints it with the
// rank and aborts the whole job (run_rank_main). Returns body's exit code.
int run_mpi_job(const std::function<int(const MpiSession&)>& body);

}  // namespace gsa::cli
