#include "comm_check.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "gsa/runtime/error.h"

namespace gsa::detail {

void throw_library_error(const char* library, const char* call_text, const char* function, const char* file, int line,
                         const std::string& library_message) {
  throw Error(
      str_cat(library, " call failed: ", call_text, " in ", function, " (", file, ":", line, "): ", library_message));
}

std::string mpi_error_string(int code) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS || length <= 0) {
    return str_cat("MPI error ", code);
  }
  return std::string(text, static_cast<size_t>(length));
}

int world_rank_or_unknown() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return -1;
  int rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

std::string describe_timeout(const OperationLabel& label) {
  const double seconds = static_cast<double>(label.timeout.count()) / 1000.0;
  return str_cat("gsa: rank ", label.world_rank, " (", label.group_name, "): ", label.operation, " #", label.sequence,
                 " timed out after ", seconds, " s waiting for the other ranks (a peer died or stalled)");
}

namespace {
[[noreturn]] void print_and_abort(const std::string& message, const std::function<void()>& before_abort) {
  std::fprintf(stderr, "%s\n", message.c_str());
  std::fflush(stderr);
  std::fflush(stdout);
  if (before_abort) before_abort();
  MPI_Abort(MPI_COMM_WORLD, 3);
  std::_Exit(3);  // MPI_Abort does not return; this only keeps [[noreturn]] honest
}
}  // namespace

void report_timeout_and_abort(const OperationLabel& label, const std::function<void()>& before_abort) {
  print_and_abort(describe_timeout(label), before_abort);
}

void report_failure_and_abort(const OperationLabel& label, const std::string& reason,
                              const std::function<void()>& before_abort) {
  print_and_abort(str_cat("gsa: rank ", label.world_rank, " (", label.group_name, "): ", label.operation, " #",
                          label.sequence, " failed: ", reason),
                  before_abort);
}

void PollBackoff::sleep() {
  std::this_thread::sleep_for(delay_);
  delay_ = std::min(delay_ * 2, std::chrono::microseconds(100));
}

}  // namespace gsa::detail
