// main() of every MPI test executable: one MPI session around GoogleTest. Rank 0 prints the usual GoogleTest
// output; the other ranks print only their failures, tagged "[rank R]". Every rank exits with the worst result
// of all ranks, so a failure on any rank fails the ctest test.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>

#include "mpi/mpi_test_env.h"

namespace {

class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}

  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::printf("[rank %d] %s:%d: Failure\n%s\n", rank_, result.file_name() ? result.file_name() : "?",
                result.line_number(), result.message());
    std::fflush(stdout);
  }

  void OnTestEnd(const ::testing::TestInfo& info) override {
    if (!info.result()->Failed()) return;
    std::printf("[rank %d] [  FAILED  ] %s.%s\n", rank_, info.test_suite_name(), info.name());
    std::fflush(stdout);
  }

 private:
  int rank_;
};

}  // namespace

int main(int argc, char** argv) {
  gsa::test::start_mpi_test_session(&argc, &argv);
  at::set_num_threads(1);
  ::testing::InitGoogleTest(&argc, argv);
  const int rank = gsa::test::mpi_session().world_rank();
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(rank));
  }
  const int result = RUN_ALL_TESTS();
  int worst = result;
  MPI_Allreduce(&result, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0 && worst != result) {
    std::printf("gsa: tests failed on another rank (see the [rank R] lines above)\n");
    std::fflush(stdout);
  }
  gsa::test::finish_mpi_test_session();
  return worst;
}
