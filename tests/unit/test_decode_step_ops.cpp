// The fused decode-step ops (runtime/decode_step_ops.h) against the LibTorch ops they replace, on CPU tensors
// (the CPU twins) and, with a device, CUDA tensors (the CUDA kernels; those cases skip without one):
//   rope_append   vs apply_rope (rope.h) on q and k, k and v written into copies of the caches by indexing:
//                 bit for bit; B 1..5, (Hq, Hkv) (4, 1), (8, 2), (32, 8), D 64 and 128 (and 16, 24: D = 8 mod 16
//                 reads its partner half across two words), one batched cache and per-sequence caches of
//                 different capacities (DecodeCaches' pointer tables), scattered positions, strided qkv rows;
//   add_rms_norm  vs x + y (bit for bit) and at::rms_norm(x + y, {H}, weight, eps): within 1 ulp of the dtype
//                 (the kernels sum the squares in another order than LibTorch, so rstd may differ in its last
//                 fp32 bits and move a rounding), on at most 1% of the elements; N 1..7, H 2048, 520, 8;
//   silu_mul      vs at::silu(gate) * up bit for bit, with every finite bf16/fp16 value as a gate (exhaustive:
//                 silu's fp32 exp is the only place an implementation could differ) and random shapes;
// bad inputs (dtype, shapes, head dim) throw gsa::Error naming the problem; the three CUDA kernels replay in a
// CUDA graph (DecodeStepGraph) with their inputs updated in place.
// "ulp distance": the difference of the two values' bit patterns read as sign-magnitude integers (adjacent
// representable values are 1 apart).
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "gsa/runtime/decode_caches.h"
#include "gsa/runtime/decode_graph.h"
#include "gsa/runtime/decode_step_ops.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/rope.h"
#include "common/error_of.h"

namespace gsa {
namespace {

// Largest ulp distance between two bf16/fp16 tensors of one shape (compared on the CPU).
int64_t max_ulp_distance(const at::Tensor& a, const at::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  EXPECT_EQ(a.scalar_type(), b.scalar_type());
  auto key = [](const at::Tensor& t) {
    const at::Tensor bits = t.cpu().contiguous().view(at::kShort).to(at::kInt);  // negative: sign bit set
    return at::where(bits < 0, -(bits + 32768), bits);
  };
  return (key(a) - key(b)).abs().max().item<int64_t>();
}

int64_t count_different(const at::Tensor& a, const at::Tensor& b) {
  return a.cpu().ne(b.cpu()).sum().item<int64_t>();
}

std::string dtype_name(at::ScalarType dtype) { return dtype == at::kBFloat16 ? "bf16" : "fp16"; }

// ---------------------------------------------------------------------------------------------------- rope_append

struct RopeCase {
  int64_t batch, hq, hkv, d;
  at::ScalarType dtype;
  bool per_sequence;  // one cache per sequence (pointer tables) instead of one batched cache
};

void check_rope_append(at::Device device, const RopeCase& c, uint64_t seed) {
  SCOPED_TRACE(str_cat(device, " ", dtype_name(c.dtype), " B ", c.batch, " Hq ", c.hq, " Hkv ", c.hkv, " D ", c.d,
                       c.per_sequence ? " per-sequence caches" : " batched cache"));
  at::manual_seed(seed);
  std::mt19937 rng(seed);
  const auto opts = at::TensorOptions().dtype(c.dtype).device(device);
  const int64_t B = c.batch, D = c.d, heads = c.hq + 2 * c.hkv, width = heads * D;

  // Inputs: qkv rows strided (a view of a wider buffer); cache rows and RoPE positions scattered.
  const at::Tensor qkv = at::randn({B, width + 16}, opts).narrow(1, 8, width);  // [B, (Hq + 2 Hkv) * D]
  std::vector<int64_t> capacity(B), rows(B), rope_rows(B);
  for (int64_t b = 0; b < B; ++b) {
    capacity[b] = c.per_sequence ? 8 + 8 * static_cast<int64_t>(rng() % 5) : 40;
    rows[b] = static_cast<int64_t>(rng() % capacity[b]);
    rope_rows[b] = rows[b] + static_cast<int64_t>(rng() % 100000);
  }
  const at::Tensor positions = at::tensor(rows, at::kLong).to(device);  // [B]
  ModelOptions model;
  model.head_dim = D;
  model.rope_theta = 500000.0;
  const RopeTables tables = make_rope_tables(at::tensor(rope_rows, at::kLong).to(device).view({B, 1}),
                                             rope_inv_freq(model, device), c.dtype);  // [B, 1, 1, D] each

  KvCache batched;
  std::vector<KvCache> own(B);
  std::vector<KvCache*> own_pointers;
  if (c.per_sequence) {
    for (int64_t b = 0; b < B; ++b) {
      own[b].k = {at::randn({1, c.hkv, capacity[b], D}, opts)};
      own[b].v = {at::randn({1, c.hkv, capacity[b], D}, opts)};
      own_pointers.push_back(&own[b]);
    }
  } else {
    batched.k = {at::randn({B, c.hkv, capacity[0], D}, opts)};
    batched.v = {at::randn({B, c.hkv, capacity[0], D}, opts)};
  }
  DecodeCaches caches = c.per_sequence ? DecodeCaches(own_pointers) : DecodeCaches(batched);
  auto cache = [&](int64_t b, bool values) -> const at::Tensor& {  // [1 or B, Hkv, C, D] holding sequence b
    const KvCache& kv = c.per_sequence ? own[b] : batched;
    return values ? kv.v[0] : kv.k[0];
  };

  // The oracle: apply_rope on the q and k heads, the rows written into copies of the caches.
  const at::Tensor by_head = qkv.reshape({B, heads, 1, D});
  const at::Tensor expected_q = apply_rope(by_head.narrow(1, 0, c.hq), tables).squeeze(2);       // [B, Hq, D]
  const at::Tensor rotated_k = apply_rope(by_head.narrow(1, c.hq, c.hkv), tables).squeeze(2);    // [B, Hkv, D]
  const at::Tensor new_v = by_head.narrow(1, c.hq + c.hkv, c.hkv).squeeze(2);                     // [B, Hkv, D]
  std::vector<at::Tensor> expected_k, expected_v;  // [B] copies of the cache holding sequence b
  for (int64_t b = 0; b < B; ++b) {
    const bool fresh = c.per_sequence || b == 0;
    expected_k.push_back(fresh ? cache(b, false).clone() : expected_k[0]);
    expected_v.push_back(fresh ? cache(b, true).clone() : expected_v[0]);
    const int64_t slot = c.per_sequence ? 0 : b;
    expected_k[b].select(0, slot).select(1, rows[b]).copy_(rotated_k[b]);
    expected_v[b].select(0, slot).select(1, rows[b]).copy_(new_v[b]);
  }

  const at::Tensor step_qkv = c.per_sequence ? qkv.unsqueeze(1) : qkv;  // [B, 1, ...] is accepted too
  const at::Tensor q = rope_append(step_qkv, tables.cos, tables.sin_rotated, c.hq, c.hkv, positions,
                                   caches.rows(0, false), caches.rows(0, true));
  ASSERT_EQ(q.sizes(), expected_q.sizes());
  EXPECT_EQ(max_ulp_distance(q, expected_q), 0);
  for (int64_t b = 0; b < B; ++b) {  // the new rows, and every other row untouched
    EXPECT_EQ(max_ulp_distance(cache(b, false), expected_k[b]), 0) << "K cache of sequence " << b;
    EXPECT_EQ(max_ulp_distance(cache(b, true), expected_v[b]), 0) << "V cache of sequence " << b;
  }
}

void check_rope_append_cases(at::Device device) {
  std::mt19937 rng(7);
  uint64_t seed = 0;
  for (const at::ScalarType dtype : {at::kBFloat16, at::kHalf}) {
    for (const auto& [hq, hkv] : std::vector<std::pair<int64_t, int64_t>>{{4, 1}, {8, 2}, {32, 8}}) {
      for (const int64_t d : {64, 128}) {
        for (const bool per_sequence : {false, true}) {
          check_rope_append(device, {1 + static_cast<int64_t>(rng() % 5), hq, hkv, d, dtype, per_sequence}, ++seed);
        }
      }
    }
    check_rope_append(device, {3, 4, 2, 24, dtype, true}, ++seed);   // D = 8 mod 16
    check_rope_append(device, {2, 2, 1, 16, dtype, false}, ++seed);  // the smallest two-word head
  }
}

TEST(DecodeStepOps, RopeAppendEqualsApplyRopeAndCacheWritesOnCpu) { check_rope_append_cases(at::kCPU); }

TEST(DecodeStepOps, RopeAppendEqualsApplyRopeAndCacheWritesOnCuda) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  check_rope_append_cases(at::Device(at::kCUDA, 0));
}

// --------------------------------------------------------------------------------------------------- add_rms_norm

void check_add_rms_norm(at::Device device, at::ScalarType dtype, at::IntArrayRef lead, int64_t H, uint64_t seed) {
  SCOPED_TRACE(str_cat(device, " ", dtype_name(dtype), " rows ", lead, " H ", H));
  at::manual_seed(seed);
  const auto opts = at::TensorOptions().dtype(dtype).device(device);
  std::vector<int64_t> shape = lead.vec(), wide = lead.vec();
  shape.push_back(H);
  wide.push_back(H + 8);
  const at::Tensor x = (at::randn(wide, opts) * 4).narrow(-1, 0, H);  // [..., H] strided rows
  const at::Tensor y = at::randn(shape, opts) * 0.25;                  // [..., H] the residual branch
  const at::Tensor weight = 1 + 0.2 * at::randn({H}, opts);            // [H]
  const double eps = 1e-5;

  const auto [sum, normed] = add_rms_norm(x, y, weight, eps);
  const at::Tensor expected_sum = x + y;
  const at::Tensor expected_normed = at::rms_norm(expected_sum, {H}, weight, eps);
  ASSERT_EQ(sum.sizes(), expected_sum.sizes());
  ASSERT_EQ(normed.sizes(), expected_normed.sizes());
  EXPECT_EQ(max_ulp_distance(sum, expected_sum), 0);
  EXPECT_LE(max_ulp_distance(normed, expected_normed), 1);
  EXPECT_LE(count_different(normed, expected_normed), std::max<int64_t>(1, normed.numel() / 100));
}

void check_add_rms_norm_cases(at::Device device) {
  std::mt19937 rng(11);
  uint64_t seed = 100;
  for (const at::ScalarType dtype : {at::kBFloat16, at::kHalf}) {
    for (const int64_t H : {2048, 520, 8}) {
      const int64_t n = 1 + static_cast<int64_t>(rng() % 7);
      check_add_rms_norm(device, dtype, {n}, H, ++seed);
    }
    check_add_rms_norm(device, dtype, {2, 3}, 2048, ++seed);  // [B, T, H]
    check_add_rms_norm(device, dtype, {3}, 8192, ++seed);     // more than one word per thread on CUDA
  }
}

TEST(DecodeStepOps, AddRmsNormMatchesAddThenRmsNormOnCpu) { check_add_rms_norm_cases(at::kCPU); }

TEST(DecodeStepOps, AddRmsNormMatchesAddThenRmsNormOnCuda) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  check_add_rms_norm_cases(at::Device(at::kCUDA, 0));
}

// ------------------------------------------------------------------------------------------------------- silu_mul

void check_silu_mul(const at::Tensor& gate_up) {
  const int64_t I = gate_up.size(-1) / 2;
  const at::Tensor expected = at::silu(gate_up.narrow(-1, 0, I)) * gate_up.narrow(-1, I, I);
  const at::Tensor got = silu_mul(gate_up);
  ASSERT_EQ(got.sizes(), expected.sizes());
  EXPECT_EQ(max_ulp_distance(got, expected), 0);
}

void check_silu_mul_cases(at::Device device) {
  at::manual_seed(5);
  std::mt19937 rng(5);
  for (const at::ScalarType dtype : {at::kBFloat16, at::kHalf}) {
    SCOPED_TRACE(str_cat(device, " ", dtype_name(dtype)));
    const auto opts = at::TensorOptions().dtype(dtype).device(device);
    // Every bit pattern as a gate (non-finite ones replaced by 0), [128, 512], times random up values.
    const at::Tensor all = at::arange(-32768, 32768, at::kInt).to(at::kShort).view(dtype).to(device);
    const at::Tensor gate = at::where(at::isfinite(all), all, at::zeros_like(all)).view({128, 512});
    check_silu_mul(at::cat({gate, at::randn({128, 512}, opts)}, 1));
    for (const int64_t I : {8192, 520, 8}) {
      const int64_t n = 1 + static_cast<int64_t>(rng() % 7);
      SCOPED_TRACE(str_cat("N ", n, " I ", I));
      check_silu_mul(at::randn({n, 2 * I}, opts) * 3);
      check_silu_mul((at::randn({2, n, 2 * I + 8}, opts) * 3).narrow(-1, 0, 2 * I));  // strided rows
    }
  }
}

TEST(DecodeStepOps, SiluMulEqualsSiluTimesUpOnCpu) { check_silu_mul_cases(at::kCPU); }

TEST(DecodeStepOps, SiluMulEqualsSiluTimesUpOnCuda) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  check_silu_mul_cases(at::Device(at::kCUDA, 0));
}

// ------------------------------------------------------------------------------------- graphs, sizes, bad inputs

// The three kernels captured once and replayed with new inputs written in place: the same results as eager calls.
TEST(DecodeStepOps, CudaKernelsReplayInACudaGraph) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  const at::Device device(at::kCUDA, 0);
  const auto opts = at::TensorOptions().dtype(at::kBFloat16).device(device);
  const int64_t B = 3, hq = 8, hkv = 2, D = 64, H = 2048, I = 512;
  at::manual_seed(9);
  const at::Tensor qkv = at::empty({B, (hq + 2 * hkv) * D}, opts), x = at::empty({B, H}, opts),
                   y = at::empty({B, H}, opts), gate_up = at::empty({B, 2 * I}, opts);
  const at::Tensor weight = 1 + 0.1 * at::randn({H}, opts);
  ModelOptions model;
  model.head_dim = D;
  const at::Tensor positions = at::tensor(std::vector<int64_t>{5, 0, 17}, at::kLong).to(device);
  const RopeTables tables = make_rope_tables(positions.view({B, 1}), rope_inv_freq(model, device), at::kBFloat16);
  KvCache cache;
  cache.k = {at::zeros({B, hkv, 32, D}, opts)};
  cache.v = {at::zeros({B, hkv, 32, D}, opts)};
  DecodeCaches caches(cache);
  auto step = [&] {
    const at::Tensor q = rope_append(qkv, tables.cos, tables.sin_rotated, hq, hkv, positions, caches.rows(0, false),
                                     caches.rows(0, true));
    const auto [sum, normed] = add_rms_norm(x, y, weight, 1e-5);
    return at::cat({q.flatten(), sum.flatten(), normed.flatten(), silu_mul(gate_up).flatten(),
                    cache.k[0].flatten(), cache.v[0].flatten()});
  };
  DecodeStepGraph graph;
  for (int i = 0; i < 4; ++i) {
    for (const at::Tensor& t : {qkv, x, y, gate_up}) t.normal_();
    const at::Tensor replayed = graph.run(step);
    cache.k[0].zero_();
    cache.v[0].zero_();
    EXPECT_EQ(max_ulp_distance(replayed, step()), 0) << "step " << i;
  }
  EXPECT_EQ(graph.captures(), 1);
}

TEST(DecodeStepOps, SupportedSizes) {
  EXPECT_TRUE(decode_step_ops_supported(at::kBFloat16, 64, 2048, 8192));
  EXPECT_TRUE(decode_step_ops_supported(at::kHalf, 128, 520, 24));
  EXPECT_FALSE(decode_step_ops_supported(at::kFloat, 64, 2048, 8192));
  EXPECT_FALSE(decode_step_ops_supported(at::kBFloat16, 60, 2048, 8192));
  EXPECT_FALSE(decode_step_ops_supported(at::kBFloat16, 64, 2050, 8192));
  EXPECT_FALSE(decode_step_ops_supported(at::kBFloat16, 64, 2048, 8196));
  EXPECT_FALSE(decode_step_ops_supported(at::kBFloat16, 64, 32768, 8192));
}

TEST(DecodeStepOps, RejectsBadInputsByName) {
  const auto bf16 = at::TensorOptions().dtype(at::kBFloat16);
  // rope_append: Hq 4, Hkv 1, D 64 over B 2.
  const at::Tensor qkv = at::randn({2, 6 * 64}, bf16), cos = at::randn({2, 64}, bf16);
  const at::Tensor positions = at::zeros({2}, at::kLong);
  const at::Tensor k = at::zeros({2, 1, 8, 64}, bf16), v = at::zeros({2, 1, 8, 64}, bf16);
  KvCache cache;
  cache.k = {k};
  cache.v = {v};
  DecodeCaches caches(cache);
  const kernels::KvRows kr = caches.rows(0, false), vr = caches.rows(0, true);
  EXPECT_ERROR_MENTIONS(rope_append(qkv.to(at::kFloat), cos, cos, 4, 1, positions, kr, vr), "bf16 or fp16");
  EXPECT_ERROR_MENTIONS(rope_append(qkv, cos.to(at::kHalf), cos, 4, 1, positions, kr, vr), "cos is Half");
  EXPECT_ERROR_MENTIONS(rope_append(qkv, cos, cos, 3, 1, positions, kr, vr), "(Hq + 2 Hkv) * D");
  EXPECT_ERROR_MENTIONS(rope_append(qkv, cos.narrow(1, 0, 32), cos, 4, 1, positions, kr, vr), "rows of D = 64");
  EXPECT_ERROR_MENTIONS(rope_append(qkv, cos, cos, 4, 1, positions.to(at::kInt), kr, vr), "int64");
  EXPECT_ERROR_MENTIONS(rope_append(qkv, cos, cos, 4, 1, positions, kr, kernels::KvRows{}), "cache rows");
  const at::Tensor qkv12 = at::randn({2, 3 * 12}, bf16), cos12 = at::randn({2, 12}, bf16);  // D = 12
  EXPECT_ERROR_MENTIONS(rope_append(qkv12, cos12, cos12, 1, 1, positions, kr, vr), "multiple of 8");
  // add_rms_norm
  const at::Tensor x = at::randn({3, 64}, bf16), w = at::ones({64}, bf16);
  EXPECT_ERROR_MENTIONS(add_rms_norm(x.to(at::kFloat), x.to(at::kFloat), w, 1e-5), "bf16 or fp16");
  EXPECT_ERROR_MENTIONS(add_rms_norm(x, x.to(at::kHalf), w, 1e-5), "y is Half");
  EXPECT_ERROR_MENTIONS(add_rms_norm(x, at::randn({3, 72}, bf16), w, 1e-5), "x and y");
  EXPECT_ERROR_MENTIONS(add_rms_norm(x, x, at::ones({72}, bf16), 1e-5), "weight must be [H] = [64]");
  const at::Tensor x20 = at::randn({3, 20}, bf16);
  EXPECT_ERROR_MENTIONS(add_rms_norm(x20, x20, at::ones({20}, bf16), 1e-5), "multiple of 8");
  // silu_mul
  EXPECT_ERROR_MENTIONS(silu_mul(at::randn({2, 32})), "bf16 or fp16");
  EXPECT_ERROR_MENTIONS(silu_mul(at::randn({2, 24}, bf16)), "I a multiple of 8");
  EXPECT_THROW(silu_mul(at::randn({2, 17}, bf16)), Error);
}

}  // namespace
}  // namespace gsa
