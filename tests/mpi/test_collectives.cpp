// Communicator collectives, bit-exact (STYLE.md practice 15): every payload holds small integers (also in float
// and bf16 tensors), so every result is exact and is compared with a closed form of the ranks' inputs. Runs on
// the world group and on the sp/dp groups of a dp=2 mesh; on the MPI backend in CI and, with
// GSA_COMM_BACKEND=nccl, on NCCL with CUDA tensors on a GPU machine.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "gsa/parallel/communicator.h"
#include "gsa/parallel/process_groups.h"
#include "gsa/runtime/error.h"
#include "mpi/mpi_test_env.h"

namespace gsa {
namespace {

using test::mpi_session;
using test::test_device;

at::TensorOptions on_device(at::ScalarType type) { return at::TensorOptions().dtype(type).device(test_device()); }

// A host tensor of `type` from int64 values.
at::Tensor host_tensor(const std::vector<int64_t>& values, at::ScalarType type) {
  return at::tensor(at::ArrayRef<int64_t>(values), at::TensorOptions().dtype(at::kLong)).to(type);
}

::testing::AssertionResult same_values(const at::Tensor& actual, const at::Tensor& expected) {
  const at::Tensor got = actual.cpu();
  if (got.scalar_type() == expected.scalar_type() && got.sizes() == expected.sizes() && at::equal(got, expected)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "rank " << mpi_session().world_rank() << ": got " << got.scalar_type()
                                       << got.sizes() << "\n"
                                       << got.flatten().to(at::kDouble) << "\nexpected " << expected.scalar_type()
                                       << expected.sizes() << "\n"
                                       << expected.flatten().to(at::kDouble);
}

// bf16 holds integers exactly only up to 256: 16-bit payloads are kept short so that sums stay below that.
bool is_16_bit(at::ScalarType type) { return c10::elementSize(type) == 2; }

Communicator& world() { return *test::test_groups(1, mpi_session().world_size()).world; }

// ---- One check per operation, on any group. -------------------------------------------------------------------

// all_reduce sum of v[r][i] = (r + 1) * (i + 1) + i: sum_r = (i + 1) * S (S + 1) / 2 + S * i.
void check_all_reduce_sum(Communicator& comm, at::ScalarType type) {
  const int64_t n = is_16_bit(type) ? 5 : 37, S = comm.size(), r = comm.rank();
  std::vector<int64_t> mine, expected;
  for (int64_t i = 0; i < n; ++i) {
    mine.push_back((r + 1) * (i + 1) + i);
    expected.push_back((i + 1) * S * (S + 1) / 2 + S * i);
  }
  at::Tensor tensor = host_tensor(mine, type).to(test_device());
  comm.all_reduce(tensor, ReduceOp::kSum);
  EXPECT_TRUE(same_values(tensor, host_tensor(expected, type))) << comm.name() << " dtype " << type;
}

// all_reduce max of v[r][i] = (7 r + 3 i) % 11 - 5.
void check_all_reduce_max(Communicator& comm, at::ScalarType type) {
  const int64_t n = 23, S = comm.size(), r = comm.rank();
  std::vector<int64_t> mine, expected;
  for (int64_t i = 0; i < n; ++i) {
    mine.push_back((7 * r + 3 * i) % 11 - 5);
    int64_t best = -100;
    for (int64_t q = 0; q < S; ++q) best = std::max(best, (7 * q + 3 * i) % 11 - 5);
    expected.push_back(best);
  }
  at::Tensor tensor = host_tensor(mine, type).to(test_device());
  comm.all_reduce(tensor, ReduceOp::kMax);
  EXPECT_TRUE(same_values(tensor, host_tensor(expected, type))) << comm.name() << " dtype " << type;
}

// all_gather of v[r][i] = 1000 r + i; optionally in place (the input is this rank's slot of the output).
void check_all_gather(Communicator& comm, at::ScalarType type, bool in_place) {
  const int64_t n = 5, S = comm.size(), r = comm.rank();
  std::vector<int64_t> mine, expected;
  for (int64_t i = 0; i < n; ++i) mine.push_back(1000 * r + i);
  for (int64_t q = 0; q < S; ++q) {
    for (int64_t i = 0; i < n; ++i) expected.push_back(1000 * q + i);
  }
  at::Tensor output = at::full({S * n}, -1, on_device(type));
  at::Tensor input = host_tensor(mine, type).to(test_device());
  if (in_place) {
    output.narrow(0, r * n, n).copy_(input);
    input = output.narrow(0, r * n, n);
  }
  comm.all_gather(input, output);
  EXPECT_TRUE(same_values(output, host_tensor(expected, type))) << comm.name() << " in_place " << in_place;
}

// reduce_scatter of v[r][j] = r + 1 + j, j < S n: rank r gets j = r n + i, sum = S (S + 1) / 2 + S j.
void check_reduce_scatter(Communicator& comm, at::ScalarType type) {
  const int64_t n = is_16_bit(type) ? 3 : 6, S = comm.size(), r = comm.rank();
  std::vector<int64_t> mine, expected;
  for (int64_t j = 0; j < S * n; ++j) mine.push_back(r + 1 + j);
  for (int64_t i = 0; i < n; ++i) expected.push_back(S * (S + 1) / 2 + S * (r * n + i));
  at::Tensor output = at::full({n}, -1, on_device(type));
  comm.reduce_scatter(host_tensor(mine, type).to(test_device()), output);
  EXPECT_TRUE(same_values(output, host_tensor(expected, type))) << comm.name() << " dtype " << type;
}

// all_to_all_v: s sends (s + 2 p + shift) % 3 rows to p (some zero); rows are [2, 3] blocks whose elements encode
// (sender, receiver, row, element).
int64_t a2a_rows(int64_t sender, int64_t receiver, int64_t shift) { return (sender + 2 * receiver + shift) % 3; }
int64_t a2a_value(int64_t sender, int64_t receiver, int64_t row, int64_t element) {
  return ((sender * 8 + receiver) * 8 + row) * 8 + element;
}

void check_all_to_all_v(Communicator& comm, at::ScalarType type, int64_t shift) {
  const int64_t S = comm.size(), r = comm.rank();
  std::vector<int64_t> send_counts, recv_counts, sent, expected;
  for (int64_t p = 0; p < S; ++p) {
    send_counts.push_back(a2a_rows(r, p, shift));
    recv_counts.push_back(a2a_rows(p, r, shift));
    for (int64_t k = 0; k < send_counts.back(); ++k) {
      for (int64_t e = 0; e < 6; ++e) sent.push_back(a2a_value(r, p, k, e));
    }
    for (int64_t k = 0; k < recv_counts.back(); ++k) {
      for (int64_t e = 0; e < 6; ++e) expected.push_back(a2a_value(p, r, k, e));
    }
  }
  const int64_t send_rows = static_cast<int64_t>(sent.size()) / 6,
                recv_rows = static_cast<int64_t>(expected.size()) / 6;
  at::Tensor input = host_tensor(sent, type).reshape({send_rows, 2, 3}).to(test_device());
  at::Tensor output = at::full({recv_rows, 2, 3}, -1, on_device(type));
  comm.all_to_all_v(input, send_counts, output, recv_counts);
  EXPECT_TRUE(same_values(output, host_tensor(expected, type).reshape({recv_rows, 2, 3})))
      << comm.name() << " shift " << shift;
}

// send_recv around the ring: rank r sends 100 r + i (4 + r elements) to r + 1 and receives from r - 1.
void check_ring_send_recv(Communicator& comm, at::ScalarType type) {
  const int64_t S = comm.size(), r = comm.rank();
  const int next = static_cast<int>((r + 1) % S), previous = static_cast<int>((r + S - 1) % S);
  std::vector<int64_t> mine, expected;
  for (int64_t i = 0; i < 4 + r; ++i) mine.push_back(100 * r + i);
  for (int64_t i = 0; i < 4 + previous; ++i) expected.push_back(100 * previous + i);
  at::Tensor received = at::full({4 + previous}, -1, on_device(type));
  comm.send_recv({{next, host_tensor(mine, type).to(test_device())}}, {{previous, received}});
  EXPECT_TRUE(same_values(received, host_tensor(expected, type))) << comm.name();
}

// send_recv fan-out and fan-in: rank 0 sends p + 1 elements (10 p + i) to every p, and then a second tensor
// (-p, -2p) to the same peer; every p > 0 replies with 1000 p + i (p elements) to rank 0.
void check_fan_send_recv(Communicator& comm) {
  const int S = comm.size(), r = comm.rank();
  const at::ScalarType type = at::kLong;
  auto outgoing = [](int64_t p) {
    std::vector<int64_t> v;
    for (int64_t i = 0; i < p + 1; ++i) v.push_back(10 * p + i);
    return v;
  };
  auto reply = [](int64_t p) {
    std::vector<int64_t> v;
    for (int64_t i = 0; i < p; ++i) v.push_back(1000 * p + i);
    return v;
  };
  std::vector<PeerTransfer> sends, recvs;
  std::vector<at::Tensor> expected;
  if (r == 0) {
    for (int p = 1; p < S; ++p) {
      sends.push_back({p, host_tensor(outgoing(p), type).to(test_device())});
      sends.push_back({p, host_tensor({-p, -2 * p}, type).to(test_device())});
      recvs.push_back({p, at::full({p}, -1, on_device(type))});
      expected.push_back(host_tensor(reply(p), type));
    }
  } else {
    recvs.push_back({0, at::full({r + 1}, -1, on_device(type))});
    expected.push_back(host_tensor(outgoing(r), type));
    recvs.push_back({0, at::full({2}, -1, on_device(type))});
    expected.push_back(host_tensor({-r, -2 * r}, type));
    sends.push_back({0, host_tensor(reply(r), type).to(test_device())});
  }
  comm.send_recv(sends, recvs);
  for (size_t k = 0; k < recvs.size(); ++k) {
    EXPECT_TRUE(same_values(recvs[k].tensor, expected[k])) << comm.name() << " receive " << k;
  }
}

// broadcast from the last rank (non-zero when S > 1): 3 i + 7.
void check_broadcast(Communicator& comm, at::ScalarType type) {
  const int root = comm.size() - 1;
  std::vector<int64_t> values;
  for (int64_t i = 0; i < 9; ++i) values.push_back(3 * i + 7);
  at::Tensor tensor =
      comm.rank() == root ? host_tensor(values, type).to(test_device()) : at::full({9}, -1, on_device(type));
  comm.broadcast(tensor, root);
  EXPECT_TRUE(same_values(tensor, host_tensor(values, type))) << comm.name() << " root " << root;
}

// ---- World group. -----------------------------------------------------------------------------------------------

TEST(Collectives, AllReduceSum) {
  for (at::ScalarType type : {at::kLong, at::kFloat, at::kDouble, at::kInt}) check_all_reduce_sum(world(), type);
}

TEST(Collectives, AllReduceMax) {
  for (at::ScalarType type : {at::kLong, at::kFloat, at::kInt, at::kChar}) check_all_reduce_max(world(), type);
}

TEST(Collectives, AllReduceHalfPrecisionIsExactOnSmallIntegers) {
  for (at::ScalarType type : {at::kBFloat16, at::kHalf}) {
    check_all_reduce_sum(world(), type);
    check_all_reduce_max(world(), type);
  }
}

TEST(Collectives, AllReduceBoolIsLogicalOr) {
  const int64_t S = world().size(), r = world().rank();
  // element i is true on rank r when (i >> r) & 1: the or over ranks is i != 0 (for i < 2^S).
  std::vector<int64_t> mine, expected;
  for (int64_t i = 0; i < (int64_t{1} << S); ++i) {
    mine.push_back((i >> r) & 1);
    expected.push_back(i != 0);
  }
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMax}) {
    at::Tensor tensor = host_tensor(mine, at::kBool).to(test_device());
    world().all_reduce(tensor, op);
    EXPECT_TRUE(same_values(tensor, host_tensor(expected, at::kBool)));
  }
}

TEST(Collectives, AllGather) {
  for (at::ScalarType type : {at::kLong, at::kFloat, at::kBFloat16}) check_all_gather(world(), type, false);
  check_all_gather(world(), at::kFloat, true);
}

TEST(Collectives, ReduceScatter) {
  for (at::ScalarType type : {at::kLong, at::kFloat, at::kBFloat16}) check_reduce_scatter(world(), type);
}

TEST(Collectives, AllToAllVUnevenAndZeroCounts) {
  for (int64_t shift = 0; shift < 3; ++shift) {
    check_all_to_all_v(world(), at::kLong, shift);
    check_all_to_all_v(world(), at::kFloat, shift);
  }
  check_all_to_all_v(world(), at::kBFloat16, 1);
}

TEST(Collectives, AllToAllVWithNothingToSend) {
  const int64_t S = world().size();
  at::Tensor input = at::empty({0, 4}, on_device(at::kFloat));
  at::Tensor output = at::empty({0, 4}, on_device(at::kFloat));
  world().all_to_all_v(input, std::vector<int64_t>(S, 0), output, std::vector<int64_t>(S, 0));
  EXPECT_EQ(output.numel(), 0);
}

TEST(Collectives, SendRecvRing) {
  check_ring_send_recv(world(), at::kLong);
  check_ring_send_recv(world(), at::kFloat);
}

TEST(Collectives, SendRecvOneRankToSeveralPeers) { check_fan_send_recv(world()); }

TEST(Collectives, BroadcastFromNonZeroRoot) {
  for (at::ScalarType type : {at::kLong, at::kFloat, at::kBFloat16}) check_broadcast(world(), type);
}

TEST(Collectives, BarrierWaitsForTheSlowestRank) {
  // Rank 0 arrives 300 ms late: nobody may leave the barrier before it arrived.
  world().barrier();
  const auto start = std::chrono::steady_clock::now();
  if (world().rank() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  world().barrier();
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, std::chrono::milliseconds(250)) << "rank " << world().rank() << " left the barrier early";
}

TEST(Collectives, HostIntegerHelpers) {
  const int64_t S = world().size(), r = world().rank();
  std::vector<int64_t> expected;
  for (int64_t q = 0; q < S; ++q) {
    expected.insert(expected.end(), {q, q * q, -q - (int64_t{1} << 40)});
  }
  EXPECT_EQ(world().all_gather_ints({r, r * r, -r - (int64_t{1} << 40)}), expected);
  EXPECT_EQ(world().all_gather_ints({}), std::vector<int64_t>{});
  EXPECT_EQ(world().all_reduce_int(r + 1, ReduceOp::kSum), S * (S + 1) / 2);
  EXPECT_EQ(world().all_reduce_int(3 * r - 100, ReduceOp::kMax), 3 * (S - 1) - 100);
}

TEST(Collectives, AsyncHandlesOverlapAndWaitInReverseOrder) {
  const int64_t S = world().size(), r = world().rank();
  at::Tensor summed = at::full({16}, r + 1, on_device(at::kLong));
  at::Tensor gathered = at::full({S * 3}, -1, on_device(at::kFloat));
  at::Tensor broadcasted = at::full({4}, r == 0 ? 42 : -1, on_device(at::kInt));
  auto first = world().all_reduce_async(summed, ReduceOp::kSum);
  auto second = world().all_gather_async(at::full({3}, r, on_device(at::kFloat)), gathered);
  {
    auto third = world().broadcast_async(broadcasted, 0);  // destroyed without wait(): the destructor waits
  }
  second->wait();
  first->wait();
  first->wait();  // a second wait is a no-op
  EXPECT_TRUE(same_values(summed, at::full({16}, S * (S + 1) / 2, at::kLong)));
  EXPECT_TRUE(same_values(gathered, at::arange(S, at::kFloat).repeat_interleave(3)));
  EXPECT_TRUE(same_values(broadcasted, at::full({4}, 42, at::kInt)));
}

TEST(Collectives, BadArgumentsThrowBeforeCommunicating) {
  const int64_t S = world().size();
  at::Tensor small = at::zeros({3}, on_device(at::kFloat));
  EXPECT_THROW(world().all_gather(small, at::zeros({3 * S + 1}, on_device(at::kFloat))), Error);
  EXPECT_THROW(world().reduce_scatter(at::zeros({3 * S - 1}, on_device(at::kFloat)), small), Error);
  EXPECT_THROW(world().all_to_all_v(small, std::vector<int64_t>(S + 1, 0), small, std::vector<int64_t>(S, 0)), Error);
  EXPECT_THROW(world().all_to_all_v(small, std::vector<int64_t>(S, 1), small, std::vector<int64_t>(S, 1)), Error);
  EXPECT_THROW(world().all_reduce(at::zeros({4, 4}, on_device(at::kFloat)).t()), Error);  // not contiguous
  EXPECT_THROW(world().broadcast(small, static_cast<int>(S)), Error);
  EXPECT_THROW(world().send_recv({{static_cast<int>(S), small}}, {}), Error);
  world().barrier();  // the group still works
}

// ---- The sp and dp groups of a dp = 2 mesh. -----------------------------------------------------------------------

TEST(ProcessGroups, SpAndDpGroupsOfTwoReplicas) {
  const int64_t S = mpi_session().world_size(), rank = mpi_session().world_rank();
  if (S % 2 != 0) GTEST_SKIP() << "needs an even world size";
  const int64_t sp = S / 2;
  const ProcessGroups& groups = test::test_groups(2, sp);
  EXPECT_EQ(groups.mesh.dp, 2);
  EXPECT_EQ(groups.mesh.sp, sp);
  EXPECT_EQ(groups.device, test_device());
  ASSERT_EQ(groups.world->size(), S);
  ASSERT_EQ(groups.sp->size(), sp);
  ASSERT_EQ(groups.dp->size(), 2);
  EXPECT_EQ(groups.world->rank(), rank);
  EXPECT_EQ(groups.sp->rank(), rank % sp);
  EXPECT_EQ(groups.dp->rank(), rank / sp);
  const std::string backend = test::test_backend() == CommBackend::kNccl ? "(NCCL)" : "(MPI)";
  EXPECT_EQ(groups.world->name(), "world " + backend);
  EXPECT_EQ(groups.sp->name(), "sp group " + std::to_string(rank / sp) + " " + backend);
  EXPECT_EQ(groups.dp->name(), "dp group " + std::to_string(rank % sp) + " " + backend);

  // Membership: the sp group holds the consecutive ranks of this replica, the dp group the same shard.
  std::vector<int64_t> sp_members, dp_members;
  for (int64_t j = 0; j < sp; ++j) sp_members.push_back((rank / sp) * sp + j);
  for (int64_t j = 0; j < 2; ++j) dp_members.push_back(j * sp + rank % sp);
  EXPECT_EQ(groups.sp->all_gather_ints({rank}), sp_members);
  EXPECT_EQ(groups.dp->all_gather_ints({rank}), dp_members);

  for (Communicator* comm : {groups.sp.get(), groups.dp.get(), groups.world.get()}) {
    check_all_reduce_sum(*comm, at::kLong);
    check_all_reduce_max(*comm, at::kFloat);
    check_all_gather(*comm, at::kLong, false);
    check_reduce_scatter(*comm, at::kFloat);
    check_all_to_all_v(*comm, at::kLong, 1);
    check_ring_send_recv(*comm, at::kFloat);
    check_fan_send_recv(*comm);
    check_broadcast(*comm, at::kLong);
    comm->barrier();
  }
}

TEST(ProcessGroups, InvalidMeshNamesEveryFactor) {
  const int64_t S = mpi_session().world_size();
  try {
    make_process_groups(mpi_session(), 3, S + 1, test::test_backend(), test::test_comm_timeout());
    FAIL() << "dp 3 x sp " << S + 1 << " was accepted for world size " << S;
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("world size " + std::to_string(S)), std::string::npos) << message;
    EXPECT_NE(message.find("dp 3"), std::string::npos) << message;
    EXPECT_NE(message.find("sp " + std::to_string(S + 1)), std::string::npos) << message;
  }
  EXPECT_THROW(make_process_groups(mpi_session(), 0, S, test::test_backend(), test::test_comm_timeout()), Error);
}

TEST(ProcessGroups, ParseCommBackend) {
  EXPECT_EQ(parse_comm_backend("mpi"), CommBackend::kMpi);
  EXPECT_EQ(parse_comm_backend("nccl"), CommBackend::kNccl);
  try {
    parse_comm_backend("gloo");
    FAIL() << "gloo was accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("gloo"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace gsa
