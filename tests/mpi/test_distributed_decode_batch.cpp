// Batched distributed decode (DistributedDecodeBatch) against single-device decode: a batch of sequences with
// different prompt lengths, documents and shard cuts (at sections and in awkward places), joining, leaving and
// changing order between steps, one crossing a KV block boundary inside the batch; every sequence's logits at every
// step equal its own Generator::step on one device, each step runs exactly one all-gather per layer for the whole
// batch and no other collective (a counting Communicator), and the plans restack only when the batch changes (or a
// sequence was stepped outside it). Tolerance: fp32 logits |a - e| <= 1e-5 + 1e-4 |e| (summation order only; as
// test_distributed_decode.cpp); the bf16 kernels (their CPU twins) ||a - e|| / ||e|| <= kBf16RelErr against the
// same kernels on one device.
#include <gtest/gtest.h>

#include <map>
#include <memory>

#include "common/tolerance.h"
#include "gsa/parallel/distributed_decode_batch.h"
#include "gsa/runtime/decode_attention.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/generation.h"
#include "mpi/mpi_test_env.h"
#include "mpi/sp_fixtures.h"

namespace gsa {
namespace {

// Forwards every operation to another communicator and counts them by kind.
class CountingCommunicator final : public Communicator {
 public:
  explicit CountingCommunicator(Communicator& inner) : inner_(inner) { set_timeout(inner.timeout()); }
  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  std::string name() const override { return inner_.name(); }
  at::Device device() const override { return inner_.device(); }
  std::unique_ptr<CommHandle> all_reduce_async(at::Tensor tensor, ReduceOp op) override {
    ++counts["all_reduce"];
    return inner_.all_reduce_async(tensor, op);
  }
  std::unique_ptr<CommHandle> all_gather_async(at::Tensor input, at::Tensor output) override {
    ++counts["all_gather"];
    return inner_.all_gather_async(input, output);
  }
  std::unique_ptr<CommHandle> reduce_scatter_async(at::Tensor input, at::Tensor output) override {
    ++counts["reduce_scatter"];
    return inner_.reduce_scatter_async(input, output);
  }
  std::unique_ptr<CommHandle> all_to_all_v_async(at::Tensor input, std::vector<int64_t> send_counts, at::Tensor output,
                                                 std::vector<int64_t> recv_counts) override {
    ++counts["all_to_all_v"];
    return inner_.all_to_all_v_async(input, std::move(send_counts), output, std::move(recv_counts));
  }
  std::unique_ptr<CommHandle> send_recv_async(std::vector<PeerTransfer> sends,
                                              std::vector<PeerTransfer> recvs) override {
    ++counts["send_recv"];
    return inner_.send_recv_async(std::move(sends), std::move(recvs));
  }
  std::unique_ptr<CommHandle> broadcast_async(at::Tensor tensor, int root) override {
    ++counts["broadcast"];
    return inner_.broadcast_async(tensor, root);
  }
  bool can_capture() const override { return inner_.can_capture(); }
  void fence() override { inner_.fence(); }

  std::map<std::string, int64_t> counts;

 private:
  Communicator& inner_;
};

// A prompt of 1-2 documents with about `context` context tokens; `near_block` grows it until the layout ends a
// few positions before a KV block boundary (so its decode crosses one).
GistLayout prompt(int64_t levels, int64_t context, uint32_t seed, bool near_block = false) {
  for (;; ++context) {
    GSA_CHECK(context < 1000, "no prompt ends just before a KV block boundary");
    std::vector<Document> docs(1 + seed % 2);
    std::mt19937 doc_rng(seed);
    for (Document& doc : docs) {
      for (int64_t i = 0; i < context / static_cast<int64_t>(docs.size()); ++i) doc.context.push_back(doc_rng() % 256);
      for (int64_t i = 0; i < 3 + static_cast<int64_t>(seed % 4); ++i) doc.suffix.push_back(doc_rng() % 256);
    }
    GistLayout layout = build_layout(docs, test::sp_gist_options(levels));
    const int64_t to_boundary = kKvBlockPositions - layout.size();
    if (!near_block || (to_boundary >= 2 && to_boundary <= 4)) return layout;
  }
}

struct Sequence {
  std::unique_ptr<Generator> alone;  // the single-device oracle
  std::unique_ptr<DistributedGenerator> sharded;
  at::Tensor last;  // the oracle's latest logits
  int64_t generated = 0;
  int64_t shard = 0;  // prompt positions this rank holds
};

// Runs the schedule below for one configuration; expects as the file comment says.
void check_batched_decode(const ModelOptions& model_options, const AttentionOptions& attention, int64_t levels,
                          uint32_t seed, bool bf16) {
  const ProcessGroups& groups = test::test_groups(1, test::mpi_session().world_size());
  CountingCommunicator sp(*groups.sp);
  LlamaModel model = LlamaModel::create(model_options, seed, groups.device);
  // Members per step: 0-2 for three steps, then 1-3 (0 left, 3 joined: it crosses a block boundary), 3 and 1
  // (2 left, another order), then 3, 1, 2 (2 back, behind by two steps).
  const std::vector<std::vector<int>> schedule{{0, 1, 2}, {0, 1, 2}, {0, 1, 2}, {1, 2, 3},
                                               {1, 2, 3}, {3, 1},    {3, 1, 2}, {3, 1, 2}};
  const int64_t restacks_expected = 4;
  const int64_t max_new = 16;
  std::vector<Sequence> seqs(4);
  for (int i = 0; i < 4; ++i) {
    const GistLayout layout = prompt(levels, 30 + 23 * i, seed + i, /*near_block=*/i == 3);
    const SequenceShards shards = i % 2 == 0 ? shard_at_sections({layout}, sp.size())
                                             : test::sp_awkward_shards(layout.size(), sp.size(), seed + i);
    seqs[i].alone = std::make_unique<Generator>(model, attention, layout, layout.size() + max_new);
    seqs[i].sharded =
        std::make_unique<DistributedGenerator>(model, attention, layout, shards, layout.size() + max_new, sp);
    seqs[i].shard = shards.shard_size(sp.rank());
  }
  std::vector<bool> prefilled(4, false);
  DistributedDecodeBatch batch;
  // CUDA over NCCL with the kernels: the steps replay CUDA graphs (distributed_decode_batch.h).
  const bool graphs = decode_step_capturable(model, attention) && sp.can_capture();
  for (size_t s = 0; s < schedule.size(); ++s) {
    std::vector<DistributedGenerator*> members;
    std::vector<int64_t> tokens;
    for (int i : schedule[s]) {
      Sequence& q = seqs[i];
      if (!prefilled[i]) {  // joins now
        q.last = q.alone->prefill();
        const at::Tensor sharded = q.sharded->prefill();
        if (bf16) {
          EXPECT_TRUE(test::relative_error_below(sharded, q.last, test::kBf16RelErr)) << "prefill " << i;
        } else {
          GSA_EXPECT_CLOSE(sharded, q.last, 1e-5, 1e-4) << "prefill " << i;
        }
        prefilled[i] = true;
      }
      members.push_back(q.sharded.get());
      tokens.push_back(q.last.argmax().item<int64_t>());  // greedy on the oracle: both sides see the same tokens
    }
    sp.counts.clear();
    const std::vector<at::Tensor> got = batch.step(members, tokens);
    if (graphs) {  // a replayed step calls no collective from the host: only all-gathers, when any
      for (const auto& [kind, count] : sp.counts) EXPECT_EQ(kind, "all_gather") << "step " << s;
    } else {
      const std::map<std::string, int64_t> expected_counts =
          sp.size() > 1 ? std::map<std::string, int64_t>{{"all_gather", model_options.num_layers}}
                        : std::map<std::string, int64_t>{};
      EXPECT_EQ(sp.counts, expected_counts)
          << "step " << s << ": one all-gather per layer for the whole batch (none on one rank), nothing else";
    }
    ASSERT_EQ(got.size(), schedule[s].size());
    for (size_t j = 0; j < got.size(); ++j) {
      Sequence& q = seqs[schedule[s][j]];
      q.last = q.alone->step(tokens[j]);
      ++q.generated;
      SCOPED_TRACE(str_cat("step ", s, " sequence ", schedule[s][j]));
      if (bf16) {
        EXPECT_TRUE(test::relative_error_below(got[j], q.last, test::kBf16RelErr));
      } else {
        GSA_EXPECT_CLOSE(got[j], q.last, 1e-5, 1e-4);
      }
    }
  }
  EXPECT_EQ(batch.restacks(), restacks_expected);
  // The batches {0, 1, 2} (3 steps) and {3, 1, 2} (2 steps) each capture once (a first step runs eagerly).
  if (graphs) {
    EXPECT_GE(batch.graph_captures(), 2);
  }
  EXPECT_GT(seqs[3].sharded->layout().size(), kKvBlockPositions) << "sequence 3 should cross a block boundary";
  const bool tail = sp.rank() == sp.size() - 1;
  for (const Sequence& q : seqs) {
    EXPECT_EQ(q.sharded->held_positions(), q.shard + (tail ? q.generated : 0));
  }
}

TEST(DistributedDecodeBatch, EqualsEachSequenceDecodedAloneOnOneDevice) {
  uint32_t seed = 40;
  for (int64_t levels : {1, 2}) {
    for (bool selective : {false, true}) {
      SCOPED_TRACE(str_cat("levels ", levels, " selective ", selective));
      AttentionOptions attention;
      attention.selection.enabled = selective;
      check_batched_decode(test::sp_tiny_model(), attention, levels, seed += 10, /*bf16=*/false);
    }
  }
}

// The decode kernels' path (per-sequence pointer tables, the kernels' KV append, and with selection the selection
// kernels over each sequence's replicated tree through its key slot table, writing after the prompt rows) against
// the same kernels on one device: their CPU twins here, the CUDA kernels (and the replayed CUDA graph of the step)
// when the suite runs on a GPU over NCCL.
TEST(DistributedDecodeBatch, KernelPathEqualsKernelsOnOneDevice) {
  ModelOptions o = test::sp_tiny_model();
  o.head_dim = 64;
  o.hidden_size = 128;
  o.dtype = DType::kBFloat16;
  uint32_t seed = 90;
  for (bool selective : {false, true}) {
    SCOPED_TRACE(str_cat("selective ", selective));
    AttentionOptions attention;
    attention.backend = AttentionBackend::kKernels;
    attention.selection.enabled = selective;
    check_batched_decode(o, attention, 2, seed += 10, /*bf16=*/true);
  }
}

// A sequence stepped outside the batch (its own step()) between two steps of an otherwise unchanged batch: the
// batch restacks instead of advancing its stale plan, and the logits still equal the single-device oracle's.
TEST(DistributedDecodeBatch, SequenceSteppedElsewhereRestacks) {
  const ProcessGroups& groups = test::test_groups(1, test::mpi_session().world_size());
  LlamaModel model = LlamaModel::create(test::sp_tiny_model(), 11, groups.device);
  AttentionOptions attention;
  attention.selection.enabled = true;
  std::vector<Sequence> seqs(2);
  for (int i = 0; i < 2; ++i) {
    const GistLayout layout = prompt(2, 45 + 30 * i, 60 + i);
    seqs[i].alone = std::make_unique<Generator>(model, attention, layout, layout.size() + 8);
    seqs[i].sharded = std::make_unique<DistributedGenerator>(
        model, attention, layout, shard_at_sections({layout}, groups.sp->size()), layout.size() + 8, *groups.sp);
    seqs[i].last = seqs[i].alone->prefill();
    seqs[i].sharded->prefill();
  }
  DistributedDecodeBatch batch;
  auto batch_step = [&](int step) {
    const std::vector<int64_t> tokens{seqs[0].last.argmax().item<int64_t>(), seqs[1].last.argmax().item<int64_t>()};
    const std::vector<at::Tensor> got = batch.step({seqs[0].sharded.get(), seqs[1].sharded.get()}, tokens);
    for (int i = 0; i < 2; ++i) {
      seqs[i].last = seqs[i].alone->step(tokens[i]);
      GSA_EXPECT_CLOSE(got[i], seqs[i].last, 1e-5, 1e-4) << "batch step " << step << " sequence " << i;
    }
  };
  batch_step(0);
  batch_step(1);
  EXPECT_EQ(batch.restacks(), 1);
  const int64_t token = seqs[0].last.argmax().item<int64_t>();
  const at::Tensor alone = seqs[0].sharded->step(token);
  seqs[0].last = seqs[0].alone->step(token);
  GSA_EXPECT_CLOSE(alone, seqs[0].last, 1e-5, 1e-4) << "the step outside the batch";
  batch_step(2);
  EXPECT_EQ(batch.restacks(), 2);
}

TEST(DistributedDecodeBatch, BadBatchesFailOnEveryRankAndMoveNothing) {
  const ProcessGroups& groups = test::test_groups(1, test::mpi_session().world_size());
  LlamaModel model = LlamaModel::create(test::sp_tiny_model(), 7, groups.device);
  AttentionOptions attention;
  const GistLayout a = prompt(1, 40, 1), b = prompt(1, 50, 2);
  DistributedGenerator first(model, attention, a, shard_at_sections({a}, groups.sp->size()), a.size() + 4, *groups.sp);
  DistributedGenerator second(model, attention, b, shard_at_sections({b}, groups.sp->size()), b.size() + 4, *groups.sp);
  DistributedDecodeBatch batch;
  EXPECT_THROW(batch.step({&first, &second}, {1, 2}), Error);  // not prefilled
  first.prefill();
  second.prefill();
  try {
    batch.step({&first, &second}, {1, model.options().vocab_size});
    ADD_FAILURE() << "a token outside the vocabulary was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sequence 1: token id 264 is outside the vocabulary"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(batch.step({&first, &first}, {1, 2}), Error);
  EXPECT_THROW(batch.step({&first}, {1, 2}), Error);
  EXPECT_EQ(first.layout().size(), a.size()) << "a rejected batch moved a sequence";
  EXPECT_EQ(second.layout().size(), b.size());
  EXPECT_EQ(batch.step({&first, &second}, {1, 2}).size(), 2u);
}

}  // namespace
}  // namespace gsa
