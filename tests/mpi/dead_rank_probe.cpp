// dead_rank_probe stall|die TIMEOUT_MS: a job in which rank 1 fails to join a world all_reduce that every other rank
// enters. "stall": rank 1 sleeps far past the timeout; "die": rank 1 exits (std::_Exit(7)) without finalising MPI.
// The others must leave within about TIMEOUT_MS (the communicator's deadline reports and aborts the job) instead
// of hanging (GSA_COMM_BACKEND=nccl: the same on NCCL); test_dead_rank.sh checks the exit status, the wall time and the report. Exits 0 only if the
// all_reduce completed, which is a failure of the test.
#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "gsa/parallel/process_groups.h"
#include "gsa/runtime/error.h"

int main(int argc, char** argv) {
  gsa::MpiSession session(&argc, &argv);
  return gsa::run_rank_main([&]() -> int {
    GSA_CHECK(argc == 3, "usage: dead_rank_probe stall|die TIMEOUT_MS");
    const std::string mode = argv[1];
    GSA_CHECK(mode == "stall" || mode == "die", "mode must be stall or die, got ", mode);
    const std::chrono::milliseconds timeout(std::atoll(argv[2]));
    const char* backend = std::getenv("GSA_COMM_BACKEND");  // "nccl" on a GPU machine; MPI by default
    gsa::ProcessGroups groups = gsa::make_process_groups(
        session, 1, session.world_size(), backend ? gsa::parse_comm_backend(backend) : gsa::CommBackend::kMpi, timeout);
    at::Tensor tensor = at::ones({8}, at::TensorOptions().dtype(at::kFloat).device(groups.device));
    groups.world->all_reduce(tensor);  // everyone is alive here
    if (session.world_rank() == 1) {
      if (mode == "die") std::_Exit(7);
      std::this_thread::sleep_for(timeout * 40);
    }
    groups.world->all_reduce(tensor);
    std::printf("rank %d: the all_reduce completed (it should have timed out)\n", session.world_rank());
    return 0;
  });
}
