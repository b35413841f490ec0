// The environment of the MPI test executables (tests/mpi/test_*.cpp, run under mpirun by ctest, label mpi).
//
// Contract:
// - mpi_test_main.cpp starts the MPI session before any test runs and finishes it after the last one; every
//   rank runs the same tests in the same order, so collectives inside tests match up across ranks.
// - test_backend() is GSA_COMM_BACKEND ("mpi" by default, "nccl" on a GPU machine); test_device() is where the
//   tests' tensors live for that backend (CPU, or cuda:(local_rank % device count), the GPU NCCL uses).
// - test_groups(dp, sp) builds the world/sp/dp communicators of a dp x sp mesh once per (dp, sp) on the test
//   backend, with test_comm_timeout() (GSA_TEST_COMM_TIMEOUT_S, default 60 s), and caches them until the session
//   ends. Tests that need their own groups call make_process_groups(mpi_session(), dp, sp, test_backend(),
//   test_comm_timeout()) directly.
#pragma once

#include <ATen/ATen.h>

#include <chrono>
#include <cstdint>

#include "gsa/parallel/process_groups.h"

namespace gsa::test {

const MpiSession& mpi_session();
CommBackend test_backend();
at::Device test_device();
std::chrono::milliseconds test_comm_timeout();
const ProcessGroups& test_groups(int64_t dp, int64_t sp);

// For mpi_test_main.cpp only.
void start_mpi_test_session(int* argc, char*** argv);
void finish_mpi_test_session();

}  // namespace gsa::test
