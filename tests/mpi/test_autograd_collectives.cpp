// The autograd collectives with integer payloads (exact in fp32): forward values and the gradients their
// backward returns, against closed forms. Uneven and zero row counts, halos spanning several ranks.
#include <gtest/gtest.h>

#include "gsa/parallel/autograd_collectives.h"
#include "mpi/mpi_test_env.h"

namespace gsa {
namespace {

at::Tensor rows_of(int64_t count, int64_t width, double base, at::Device device) {
  return (at::arange(count * width, at::kFloat).view({count, width}) + base).to(device);
}

TEST(AutogradCollectives, AllGatherRowsBackwardIsReduceScatter) {
  const ProcessGroups& groups = test::test_groups(1, test::mpi_session().world_size());
  Communicator& comm = *groups.sp;
  const int n = comm.size(), me = comm.rank();
  std::vector<int64_t> counts;
  for (int r = 0; r < n; ++r) counts.push_back(r % 3);  // 0, 1, 2, 0 rows
  at::Tensor x = rows_of(counts[me], 3, 100.0 * me, groups.device).requires_grad_();
  at::Tensor y = all_gather_rows(x, comm, counts);
  int64_t offset = 0;
  for (int r = 0; r < n; ++r) {
    EXPECT_TRUE(at::equal(y.narrow(0, offset, counts[r]).cpu(), rows_of(counts[r], 3, 100.0 * r, at::kCPU)));
    offset += counts[r];
  }
  // d/dx of sum((me + 1) * y): every rank's weight lands on every contributed row: sum_r (r + 1).
  (y * (me + 1)).sum().backward();
  const double total = n * (n + 1) / 2.0;
  EXPECT_TRUE(at::equal(x.grad().cpu(), at::full({counts[me], 3}, total)));
}

TEST(AutogradCollectives, ExchangeRowsSendsGradientsBack) {
  const ProcessGroups& groups = test::test_groups(1, test::mpi_session().world_size());
  Communicator& comm = *groups.sp;
  const int n = comm.size(), me = comm.rank();
  // Each rank sends its last 2 rows to every later rank (a halo spanning several ranks).
  RowExchange ex;
  for (int r = me + 1; r < n; ++r) ex.sends.push_back({r, 2, 2});
  for (int r = 0; r < me; ++r) ex.recvs.push_back({r, 2});
  at::Tensor x = rows_of(4, 2, 10.0 * me, groups.device).requires_grad_();
  at::Tensor y = exchange_rows(x, comm, ex);
  ASSERT_EQ(y.size(0), 2 * me);
  for (int r = 0; r < me; ++r) {
    EXPECT_TRUE(at::equal(y.narrow(0, 2 * r, 2).cpu(), rows_of(4, 2, 10.0 * r, at::kCPU).narrow(0, 2, 2)));
  }
  // Receiver me weights its halo by (me + 1): sender s gets sum_{r > s} (r + 1) on its last two rows.
  (y * (me + 1)).sum().backward();
  double expected = 0;
  for (int r = me + 1; r < n; ++r) expected += r + 1;
  at::Tensor grad = x.grad().cpu();
  EXPECT_TRUE(at::equal(grad.narrow(0, 0, 2), at::zeros({2, 2})));
  EXPECT_TRUE(at::equal(grad.narrow(0, 2, 2), at::full({2, 2}, expected)));
}

TEST(AutogradCollectives, AllToAllRowsBackwardIsReverse) {
  const ProcessGroups& groups = test::test_groups(1, test::mpi_session().world_size());
  Communicator& comm = *groups.sp;
  const int n = comm.size(), me = comm.rank();
  // Rank s sends (s + r) % 3 rows to rank r; row values encode (sender, receiver, index).
  std::vector<int64_t> send(n), recv(n);
  std::vector<at::Tensor> blocks;
  for (int r = 0; r < n; ++r) {
    send[r] = (me + r) % 3;
    recv[r] = (r + me) % 3;
    blocks.push_back(at::arange(send[r], at::kFloat).view({-1, 1}) + 100 * me + 10 * r);
  }
  at::Tensor x = at::cat(blocks, 0).to(groups.device).requires_grad_();
  at::Tensor y = all_to_all_rows(x, comm, send, recv);
  int64_t offset = 0;
  for (int s = 0; s < n; ++s) {
    at::Tensor expected = at::arange(recv[s], at::kFloat).view({-1, 1}) + 100 * s + 10 * me;
    EXPECT_TRUE(at::equal(y.narrow(0, offset, recv[s]).cpu(), expected));
    offset += recv[s];
  }
  // Weight received rows by the receiver's rank + 1: the sender sees (r + 1) on the rows it sent to r.
  (y * (me + 1)).sum().backward();
  std::vector<at::Tensor> expected_grad;
  for (int r = 0; r < n; ++r) expected_grad.push_back(at::full({send[r], 1}, double(r + 1)));
  EXPECT_TRUE(at::equal(x.grad().cpu(), at::cat(expected_grad, 0)));
}

}  // namespace
}  // namespace gsa
