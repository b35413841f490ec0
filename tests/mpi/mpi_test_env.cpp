#include "mpi/mpi_test_env.h"

#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "gsa/runtime/error.h"

namespace gsa::test {
namespace {

std::unique_ptr<MpiSession>& session_slot() {
  static std::unique_ptr<MpiSession> session;
  return session;
}

std::map<std::pair<int64_t, int64_t>, ProcessGroups>& group_cache() {
  static std::map<std::pair<int64_t, int64_t>, ProcessGroups> cache;
  return cache;
}

}  // namespace

const MpiSession& mpi_session() {
  GSA_CHECK(session_slot() != nullptr, "mpi_session(): the MPI test session has not been started");
  return *session_slot();
}

CommBackend test_backend() {
  const char* value = std::getenv("GSA_COMM_BACKEND");
  return parse_comm_backend(value != nullptr && *value != '\0' ? value : "mpi");
}

at::Device test_device() {
  if (test_backend() == CommBackend::kMpi) return at::Device(at::kCPU);
  const auto device_count = static_cast<int>(at::getNumGPUs());
  GSA_CHECK(device_count > 0, "GSA_COMM_BACKEND=nccl but this machine has no CUDA device");
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(mpi_session().local_rank() % device_count));
}

std::chrono::milliseconds test_comm_timeout() {
  const char* value = std::getenv("GSA_TEST_COMM_TIMEOUT_S");
  const double seconds = value != nullptr && *value != '\0' ? std::atof(value) : 60.0;
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
}

const ProcessGroups& test_groups(int64_t dp, int64_t sp) {
  auto& cache = group_cache();
  const auto key = std::make_pair(dp, sp);
  auto found = cache.find(key);
  if (found == cache.end()) {
    found = cache.emplace(key, make_process_groups(mpi_session(), dp, sp, test_backend(), test_comm_timeout())).first;
  }
  return found->second;
}

void start_mpi_test_session(int* argc, char*** argv) {
  GSA_CHECK(session_slot() == nullptr, "the MPI test session was already started");
  session_slot() = std::make_unique<MpiSession>(argc, argv);
}

void finish_mpi_test_session() {
  group_cache().clear();  // communicators go before MPI_Finalize
  session_slot().reset();
}

}  // namespace gsa::test
