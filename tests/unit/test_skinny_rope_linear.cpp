// skinny_rope_linear (runtime/skinny_gemm.h: a decode step's q/k/v projection with RoPE and the K/V cache append in
// the skinny GEMM's epilogue) on CPU tensors (the CPU twins) and, with a device, CUDA tensors (the kernel's
// kRopeAppend epilogue; those cases skip without one):
//   fusion   bit for bit the unfused ops: skinny_linear, then rope_append (apply_rope on the q heads without
//            positions): q and every row of the K and V caches (the step's rows written,
//            the others untouched; without positions all untouched); batched and per-sequence caches (pointer
//            tables), B 1 .. 8, Hq / Hkv 4 / 1, 8 / 2, 32 / 8, D 64 and 128, K 2048 and 264, bias or none;
//   oracle   q within kBf16RelErr / kFp16RelErr (relative error, tests/common/tolerance.h) of LibTorch's float64
//            projection, rounded, then apply_rope: the fused pieces are each tested against
//            independent oracles elsewhere; this catches a wrong head, half or row;
//   graph    the CUDA kernel captured in a CUDA graph and replayed with x updated in place;
//   bad inputs throw gsa::Error naming the problem.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "gsa/config/options.h"
#include "gsa/runtime/decode_caches.h"
#include "gsa/runtime/decode_graph.h"
#include "gsa/runtime/decode_step_ops.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/rope.h"
#include "gsa/runtime/skinny_gemm.h"
#include "common/error_of.h"
#include "common/tolerance.h"

namespace gsa {
namespace {

struct Case {
  int64_t batch, hq, hkv, d, k;
  bool bias, per_sequence, store;  // store: positions given (k and v written)
};

std::string describe(at::ScalarType dtype, const Case& c) {
  return str_cat(dtype == at::kBFloat16 ? "bf16" : "fp16", " B ", c.batch, " Hq ", c.hq, " Hkv ", c.hkv, " D ", c.d,
                 " K ", c.k, c.bias ? " bias" : "",
                 c.per_sequence ? " per-sequence caches" : " batched cache", c.store ? " store" : " no store");
}

// One case's inputs and caches.
struct Step {
  at::Tensor x, weight, bias, positions;  // [B, K], [N, K], [N] or none, [B]
  RopeTables tables;                                        // [B, 1, 1, D] each
  KvCache batched;
  std::vector<KvCache> own;  // per-sequence caches
  std::vector<KvCache*> own_pointers;

  DecodeCaches caches(bool per_sequence) { return per_sequence ? DecodeCaches(own_pointers) : DecodeCaches(batched); }
  // Every cache tensor (K then V), cloned.
  std::vector<at::Tensor> snapshot() const {
    std::vector<at::Tensor> all;
    for (const KvCache* kv : own_pointers) all.insert(all.end(), {kv->k[0].clone(), kv->v[0].clone()});
    if (own_pointers.empty()) all.insert(all.end(), {batched.k[0].clone(), batched.v[0].clone()});
    return all;
  }
  void restore(const std::vector<at::Tensor>& all) {
    size_t i = 0;
    for (KvCache* kv : own_pointers) {
      kv->k[0].copy_(all[i++]);
      kv->v[0].copy_(all[i++]);
    }
    if (own_pointers.empty()) {
      batched.k[0].copy_(all[0]);
      batched.v[0].copy_(all[1]);
    }
  }
};

Step make_step(at::Device device, at::ScalarType dtype, const Case& c, uint64_t seed) {
  at::manual_seed(seed);
  std::mt19937 rng(seed);
  const auto opts = at::TensorOptions().dtype(dtype).device(device);
  const int64_t B = c.batch, N = (c.hq + 2 * c.hkv) * c.d;
  Step s;
  s.x = (at::randn({B, c.k + 8}, opts) * 4).narrow(1, 0, c.k);
  s.weight = at::randn({N, c.k}, opts) * 0.02;
  if (c.bias) s.bias = at::randn({N}, opts);
  std::vector<int64_t> capacity(B), rows(B), rope_rows(B);
  for (int64_t b = 0; b < B; ++b) {
    capacity[b] = c.per_sequence ? 8 + 8 * static_cast<int64_t>(rng() % 5) : 40;
    rows[b] = static_cast<int64_t>(rng() % capacity[b]);
    rope_rows[b] = rows[b] + static_cast<int64_t>(rng() % 100000);
  }
  if (c.store) s.positions = at::tensor(rows, at::kLong).to(device);
  ModelOptions model;
  model.head_dim = c.d;
  model.rope_theta = 500000.0;
  s.tables = make_rope_tables(at::tensor(rope_rows, at::kLong).to(device).view({B, 1}), rope_inv_freq(model, device),
                              dtype);
  if (c.per_sequence) {
    s.own.resize(B);
    for (int64_t b = 0; b < B; ++b) {
      s.own[b].k = {at::randn({1, c.hkv, capacity[b], c.d}, opts)};
      s.own[b].v = {at::randn({1, c.hkv, capacity[b], c.d}, opts)};
      s.own_pointers.push_back(&s.own[b]);
    }
  } else {
    s.batched.k = {at::randn({B, c.hkv, capacity[0], c.d}, opts)};
    s.batched.v = {at::randn({B, c.hkv, capacity[0], c.d}, opts)};
  }
  return s;
}

SkinnyRopeTarget target_of(const Step& s, const Case& c, DecodeCaches& caches) {
  SkinnyRopeTarget t;
  t.q_heads = c.hq;
  t.kv_heads = c.hkv;
  t.cos = s.tables.cos;
  t.sin_rotated = s.tables.sin_rotated;
  t.kv.positions = s.positions;
  t.kv.k = caches.rows(0, false);
  t.kv.v = caches.rows(0, true);
  return t;
}

void check_case(at::Device device, at::ScalarType dtype, const Case& c, uint64_t seed) {
  SCOPED_TRACE(str_cat(device, " ", describe(dtype, c)));
  Step s = make_step(device, dtype, c, seed);
  DecodeCaches caches = s.caches(c.per_sequence);
  const std::vector<at::Tensor> before = s.snapshot();
  const int64_t B = c.batch, D = c.d;
  const at::Tensor q = skinny_rope_linear(s.x, s.weight, s.bias, target_of(s, c, caches));
  const std::vector<at::Tensor> fused_caches = s.snapshot();

  // The unfused ops on the same inputs, into the caches as they were.
  s.restore(before);
  const at::Tensor qkv = skinny_linear(s.x, s.weight, s.bias.defined() ? std::optional<at::Tensor>(s.bias)
                                                                          : std::nullopt);  // [B, (Hq + 2 Hkv) D]
  const at::Tensor expected_q =
      c.store ? rope_append(qkv, s.tables.cos, s.tables.sin_rotated, c.hq, c.hkv, s.positions, caches.rows(0, false),
                            caches.rows(0, true))
              : apply_rope(qkv.narrow(1, 0, c.hq * D).reshape({B, c.hq, 1, D}), s.tables).squeeze(2);
  EXPECT_TRUE(at::equal(q, expected_q)) << "q vs the unfused ops";
  const std::vector<at::Tensor> expected_caches = s.snapshot();
  for (size_t i = 0; i < expected_caches.size(); ++i) {
    EXPECT_TRUE(at::equal(fused_caches[i], expected_caches[i])) << "cache tensor " << i;
    if (!c.store) {
      EXPECT_TRUE(at::equal(fused_caches[i], before[i])) << "cache tensor " << i << " written";
    }
  }

  // The LibTorch oracle.
  at::Tensor acc = at::mm(s.x.to(at::kDouble), s.weight.to(at::kDouble).t());
  if (s.bias.defined()) acc = acc + s.bias.to(at::kDouble);
  const at::Tensor q_ref =
      apply_rope(acc.to(dtype).narrow(1, 0, c.hq * D).reshape({B, c.hq, 1, D}), s.tables).squeeze(2);
  EXPECT_TRUE(test::relative_error_below(q, q_ref, dtype == at::kBFloat16 ? test::kBf16RelErr : test::kFp16RelErr));
}

void check_cases(at::Device device) {
  std::mt19937 rng(43);
  uint64_t seed = 0;
  for (const at::ScalarType dtype : {at::kBFloat16, at::kHalf}) {
    const std::vector<Case> cases = {
        {1, 32, 8, 64, 2048, false, false, true}, {3, 8, 2, 128, 2048, true, true, true},
        {8, 4, 1, 64, 264, false, true, true},    {2, 8, 2, 64, 2048, true, false, true},
        {5, 4, 1, 128, 264, false, false, false}, {1, 32, 8, 64, 2048, false, true, false}};
    for (Case c : cases) {
      if (c.batch > 1 && c.batch < 8) c.batch = 2 + static_cast<int64_t>(rng() % 6);
      check_case(device, dtype, c, ++seed);
    }
  }
}

TEST(SkinnyRopeLinear, EqualsUnfusedOpsOnCpu) { check_cases(at::kCPU); }

TEST(SkinnyRopeLinear, EqualsUnfusedOpsOnCuda) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  check_cases(at::Device(at::kCUDA, 0));
}

// Captured once and replayed with x written in place: q and the caches as eager calls leave them.
TEST(SkinnyRopeLinear, CudaKernelReplaysInACudaGraph) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  const Case c{4, 32, 8, 64, 2048, true, true, true};
  Step s = make_step(at::Device(at::kCUDA, 0), at::kBFloat16, c, 77);
  DecodeCaches caches = s.caches(c.per_sequence);
  const SkinnyRopeTarget target = target_of(s, c, caches);
  auto step = [&] {
    return skinny_rope_linear(s.x, s.weight, s.bias, target, true);
  };
  DecodeStepGraph graph;
  for (int i = 0; i < 3; ++i) {
    s.x.normal_();
    const at::Tensor replayed = graph.run(step);
    const std::vector<at::Tensor> after_replay = s.snapshot();
    EXPECT_TRUE(at::equal(replayed, step())) << "step " << i;
    const std::vector<at::Tensor> after_eager = s.snapshot();
    for (size_t t = 0; t < after_eager.size(); ++t) EXPECT_TRUE(at::equal(after_replay[t], after_eager[t]));
  }
  EXPECT_EQ(graph.captures(), 1);
}

TEST(SkinnyRopeLinear, SupportedSizes) {
  EXPECT_TRUE(skinny_rope_linear_supported(at::kBFloat16, 1, 2048, 64));
  EXPECT_TRUE(skinny_rope_linear_supported(at::kHalf, 8, 2048, 128));
  EXPECT_FALSE(skinny_rope_linear_supported(at::kBFloat16, 1, 2048, 72));  // D not a multiple of 16
  EXPECT_FALSE(skinny_rope_linear_supported(at::kBFloat16, 9, 2048, 64));
  EXPECT_FALSE(skinny_rope_linear_supported(at::kFloat, 1, 2048, 64));
}

TEST(SkinnyRopeLinear, RejectsBadInputsByName) {
  const Case c{2, 4, 1, 64, 64, false, false, true};
  Step s = make_step(at::kCPU, at::kBFloat16, c, 5);
  DecodeCaches caches = s.caches(false);
  const SkinnyRopeTarget good = target_of(s, c, caches);
  auto call = [&](const SkinnyRopeTarget& t, const at::Tensor& weight) {
    return skinny_rope_linear(s.x, weight, at::Tensor(), t);
  };
  EXPECT_ERROR_MENTIONS(call(good, s.weight.narrow(0, 0, 320)), "is not (Hq + 2 Hkv) * D rows");
  SkinnyRopeTarget t = good;
  t.q_heads = 5;
  t.kv_heads = 2;  // 9 heads of 384 / 9 rows: not whole
  EXPECT_ERROR_MENTIONS(call(t, s.weight), "is not (Hq + 2 Hkv) * D rows");
  t = good;
  t.cos = s.tables.cos.narrow(-1, 0, 32);
  EXPECT_ERROR_MENTIONS(call(t, s.weight), "cos and sin_rotated must hold B = 2 rows of D = 64");
  t = good;
  t.kv.positions = s.positions.to(at::kInt);
  EXPECT_ERROR_MENTIONS(call(t, s.weight), "positions must be 2 int64 values");
  t = good;
  t.kv.k = kernels::KvRows();
  EXPECT_ERROR_MENTIONS(call(t, s.weight), "the K and V cache rows must be set");
  EXPECT_ERROR_MENTIONS(call(good, s.weight.narrow(1, 0, 56)), "weight must be [N, K]");
}

}  // namespace
}  // namespace gsa
