#include "mpi_launch.h"

#include <ATen/ATen.h>

#include <cstdlib>

#include "gsa/runtime/error.h"

namespace gsa::cli {

bool launched_by_mpirun() {
  const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
  if (size == nullptr) size = std::getenv("PMI_SIZE");
  return size != nullptr && std::atoi(size) > 1;
}

CommFlags read_comm_flags(Flags& flags, const std::string& timeout_flag, int64_t default_timeout_s) {
  CommFlags out;
  out.backend_name = flags.get_string("backend", at::hasCUDA() ? "nccl" : "mpi");
  out.backend = parse_comm_backend(out.backend_name);
  const int64_t seconds = flags.get_int(timeout_flag, default_timeout_s);
  GSA_CHECK(seconds >= 1, "gsa ", flags.command_name(), ": --", timeout_flag, " must be >= 1, got ", seconds);
  out.timeout = std::chrono::seconds(seconds);
  return out;
}

int run_mpi_job(const std::function<int(const MpiSession&)>& body) {
  MpiSession session(nullptr, nullptr);
  return run_rank_main([&] { return body(session); });
}

}  // namespace gsa::cli
