// One check-macro family for the communication libraries (STYLE.md practice 8), private to gsa_parallel.
//
// Contract: GSA_CHECK_MPI(call), GSA_CHECK_CUDA(call) and GSA_CHECK_NCCL(call) evaluate `call` once and, when it
// does not return its library's success code, throw gsa::Error naming the library, the call's text, the
// function, file:line and the library's own error string. All three expand through GSA_CHECK_LIBRARY and are
// statements (do {} while (0)). GSA_CHECK_CUDA / GSA_CHECK_NCCL need <cuda_runtime_api.h> / <nccl.h> included
// by the translation unit that uses them; this header only needs <mpi.h>.
//
// report_timeout_and_abort() is the single reporter of a collective that missed its deadline: it prints
// "gsa: rank R (<group>): <op> #<seq> timed out after S s waiting for the other ranks (a peer died or
// stalled)" and aborts the whole job with MPI_Abort(MPI_COMM_WORLD, 3).
#pragma once

#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace gsa::detail {

[[noreturn]] void throw_library_error(const char* library, const char* call_text, const char* function,
                                      const char* file, int line, const std::string& library_message);

// MPI_Error_string of an MPI return code ("MPI error 17" when MPI cannot describe it).
std::string mpi_error_string(int code);

// This process's rank in MPI_COMM_WORLD, or -1 before MPI_Init / after MPI_Finalize.
int world_rank_or_unknown();

// What a handle needs to name itself in the timeout report.
struct OperationLabel {
  int world_rank = -1;
  std::string group_name;
  const char* operation = "";
  uint64_t sequence = 0;
  std::chrono::milliseconds timeout{0};
};

std::string describe_timeout(const OperationLabel& label);
// Prints describe_timeout(label), runs before_abort (e.g. ncclCommAbort) when given, then MPI_Abort(world, 3).
[[noreturn]] void report_timeout_and_abort(const OperationLabel& label, const std::function<void()>& before_abort = {});
// Prints "gsa: rank R (<group>): <op> #<seq> failed: <reason>", runs before_abort, then MPI_Abort(world, 3).
[[noreturn]] void report_failure_and_abort(const OperationLabel& label, const std::string& reason,
                                           const std::function<void()>& before_abort = {});

// Sleep between two polls of an operation in flight: starts at 20 us and doubles up to 100 us.
class PollBackoff {
 public:
  void sleep();

 private:
  std::chrono::microseconds delay_{20};
};

}  // namespace gsa::detail

#define GSA_CHECK_LIBRARY(library, call, success, describe_result)                     \
  do {                                                                                 \
    const auto gsa_library_result_ = (call);                                           \
    if (gsa_library_result_ != (success)) {                                            \
      ::gsa::detail::throw_library_error(library, #call, __func__, __FILE__, __LINE__, \
                                         describe_result(gsa_library_result_));        \
    }                                                                                  \
  } while (0)

#define GSA_CHECK_MPI(call) GSA_CHECK_LIBRARY("MPI", call, MPI_SUCCESS, ::gsa::detail::mpi_error_string)
#define GSA_CHECK_CUDA(call) GSA_CHECK_LIBRARY("CUDA", call, cudaSuccess, cudaGetErrorString)
#define GSA_CHECK_NCCL(call) GSA_CHECK_LIBRARY("NCCL", call, ncclSuccess, ncclGetErrorString)
