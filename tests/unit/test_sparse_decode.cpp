// Sparse decode attention (runtime/sparse_decode.h) against a float64 oracle written here: batches of sequences
// with row lists of different lengths (-1 holes anywhere, one empty list), GQA 1/2/4/8, head dim 64/128,
// bf16/fp16, one split and several (the lse merge), with and without a contiguous row range per sequence, on the
// CPU twin and, with a device, both CUDA kernels (SIMT and tensor-core); the LibTorch reference backend on the
// same cases. The in-kernel split merge against lse_merge over the same partials (bit for bit), the half output
// against the fp32 output rounded (bit for bit), and repeated calls and CUDA-graph replays (the ticket counters
// reset themselves) against the first call (bit for bit).
// Tolerance: tolerance.h's relative-error bound per dtype; lse within 2e-3 absolute.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>

#include "common/tolerance.h"
#include "gsa/kernels/sparse_decode.h"
#include "gsa/runtime/decode_graph.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/lse_merge.h"
#include "gsa/runtime/sparse_decode.h"

namespace gsa {
namespace {

struct Case {
  int64_t batch, hq, hkv, d, rows, list;
  at::ScalarType dtype;
};

// Float64 out [B, Hq, D] and lse [B, Hq] over the listed rows.
std::pair<at::Tensor, at::Tensor> oracle(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                         const at::Tensor& key_rows, double scale) {
  const int64_t B = q.size(0), Hq = q.size(1), D = q.size(2), g = Hq / k.size(1);
  at::Tensor out = at::zeros({B, Hq, D}, at::kDouble), lse = at::full({B, Hq}, -INFINITY, at::kDouble);
  const at::Tensor qd = q.cpu().to(at::kDouble), kd = k.cpu().to(at::kDouble), vd = v.cpu().to(at::kDouble);
  const at::Tensor rows = key_rows.cpu().to(at::kLong);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < Hq; ++h) {
      const at::Tensor list = rows[b][h / g];
      const at::Tensor held = list.masked_select(list >= 0);
      if (held.numel() == 0) continue;
      const at::Tensor keys = kd[b][h / g].index_select(0, held), values = vd[b][h / g].index_select(0, held);
      const at::Tensor s = at::matmul(keys, qd[b][h]) * scale;
      lse[b][h] = at::logsumexp(s, 0);
      out[b][h] = at::matmul(at::softmax(s, 0), values);
    }
  }
  return {out, lse};
}

const std::vector<Case> kCases = {{3, 4, 1, 64, 300, 90, at::kBFloat16},
                                  {2, 8, 1, 128, 500, 200, at::kHalf},
                                  {4, 2, 1, 64, 100, 33, at::kHalf},
                                  {2, 32, 8, 128, 700, 150, at::kBFloat16},
                                  {1, 4, 4, 128, 64, 70, at::kBFloat16}};

struct Inputs {
  at::Tensor q, k, v;   // [B, Hq, D], [B, Hkv, T, D] x 2 on the device
  at::Tensor key_rows;  // [B, Hkv, R] int32 on the host
};

// Case c's random inputs (seed `seed`; rng draws the -1 holes): sequence 1's first KV head has an empty list.
Inputs make_inputs(const Case& c, uint64_t seed, std::mt19937& rng, at::Device device) {
  at::manual_seed(seed);
  const auto opts = at::TensorOptions().dtype(c.dtype).device(device);
  Inputs in{at::randn({c.batch, c.hq, c.d}, opts), at::randn({c.batch, c.hkv, c.rows, c.d}, opts),
            at::randn({c.batch, c.hkv, c.rows, c.d}, opts), at::full({c.batch, c.hkv, c.list}, -1, at::kInt)};
  for (int64_t b = 0; b < c.batch; ++b) {
    for (int64_t h = 0; h < c.hkv; ++h) {
      if (b == 1 && h == 0) continue;  // one empty list
      const at::Tensor perm = at::randperm(c.rows, at::kLong);
      for (int64_t j = 0; j < c.list; ++j) {
        if (rng() % 5 != 0) in.key_rows[b][h][j] = perm[j % c.rows].item<int64_t>();  // -1 holes anywhere
      }
    }
  }
  return in;
}

// The cases on one device; on CUDA with the kernel GSA_DECODE_KERNEL names (simt or mma, sparse_decode.h).
void expect_cases_match_oracle(at::Device device) {
  const std::vector<Case>& cases = kCases;
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    const Case c = cases[ci];
    std::mt19937 rng(ci);
    const auto [q, k, v, key_rows] = make_inputs(c, ci, rng, device);
    const double scale = 1.0 / std::sqrt(double(c.d));
    const double bound = c.dtype == at::kHalf ? test::kFp16RelErr : test::kBf16RelErr;
    const auto [want_out, want_lse] = oracle(q, k, v, key_rows, scale);
    for (int64_t splits : {int64_t{1}, int64_t{3}, int64_t{0}}) {
      const DecodeAttention got = sparse_decode(q, k, v, key_rows.to(device), scale, splits);
      EXPECT_TRUE(test::relative_error_below(got.out, want_out, bound))
          << "case " << ci << " splits " << splits << " on " << device;
      EXPECT_TRUE(test::all_close(got.lse, want_lse, 2e-3, 1e-3)) << "case " << ci << " splits " << splits;
    }
    // A contiguous range per sequence after the list (one empty), against the oracle over the list with the
    // range's rows appended; the kernels and the LibTorch reference backend.
    at::Tensor begin = at::zeros({c.batch}, at::kInt), end = at::zeros({c.batch}, at::kInt);
    at::Tensor with_range = at::full({c.batch, c.hkv, c.list + c.rows}, -1, at::kInt);
    with_range.narrow(2, 0, c.list).copy_(key_rows);
    int64_t longest = 0;
    for (int64_t b = 0; b < c.batch; ++b) {
      const int64_t first = rng() % c.rows, length = b == 0 ? 0 : 1 + rng() % (c.rows - first);
      begin[b] = first;
      end[b] = first + length;
      longest = std::max(longest, length);
      for (int64_t j = 0; j < length; ++j) with_range[b].select(1, c.list + j).fill_(first + j);
    }
    const DecodeRange range{begin.to(device), end.to(device), longest};
    const auto [range_out, range_lse] = oracle(q, k, v, with_range, scale);
    // 3 and 7 splits: lists and ranges that do not divide evenly, splits with an empty share of either.
    for (int64_t splits : {int64_t{1}, int64_t{3}, int64_t{7}, int64_t{0}}) {
      const DecodeAttention got = sparse_decode(q, k, v, key_rows.to(device), scale, splits, &range);
      EXPECT_TRUE(test::relative_error_below(got.out, range_out, bound))
          << "range case " << ci << " splits " << splits << " on " << device;
      EXPECT_TRUE(test::all_close(got.lse, range_lse, 2e-3, 1e-3)) << "range case " << ci << " splits " << splits;
    }
    const DecodeAttention ref = sparse_decode_reference(q, k, v, key_rows.to(device), scale, &range);
    EXPECT_TRUE(test::relative_error_below(ref.out, range_out, bound)) << "reference, case " << ci;
    EXPECT_TRUE(test::all_close(ref.lse, range_lse, 2e-3, 1e-3)) << "reference, case " << ci;
  }
}

// The kernels' cut of a list or a range over the splits (kernels::split_share): in order, every row once, slices
// of ceil(n / splits) rows but the last ones (shorter or empty).
TEST(SparseDecode, SplitSharesCoverEveryRowOnceInOrder) {
  for (int32_t n : {0, 1, 5, 33, 90, 200, 1000}) {
    for (int32_t splits : {1, 2, 3, 7, 33, 40, 128}) {
      const int32_t size = (n + splits - 1) / splits;
      int32_t next = 0;
      for (int32_t s = 0; s < splits; ++s) {
        const kernels::SplitShare share = kernels::split_share(s, splits, n);
        ASSERT_EQ(share.first, next) << "n " << n << " splits " << splits << " split " << s;
        ASSERT_GE(share.count, 0) << "n " << n << " splits " << splits << " split " << s;
        ASSERT_LE(share.count, size) << "n " << n << " splits " << splits << " split " << s;
        if (share.count < size) {
          ASSERT_EQ(share.first + share.count, n) << "a short slice ends the rows; n " << n << " split " << s;
        }
        next += share.count;
      }
      EXPECT_EQ(next, n) << "n " << n << " splits " << splits;
    }
  }
}

TEST(SparseDecode, MatchesFloat64Oracle) {
  for (const at::Device device : test::test_devices()) {
    if (!device.is_cuda()) {
      expect_cases_match_oracle(device);
      continue;
    }
    for (const char* kernel : {"simt", "mma"}) {  // both CUDA kernels, whatever the default for a group
      SCOPED_TRACE(std::string("GSA_DECODE_KERNEL=") + kernel);
      setenv("GSA_DECODE_KERNEL", kernel, 1);
      expect_cases_match_oracle(device);
    }
    unsetenv("GSA_DECODE_KERNEL");
  }
}

// True when a and b hold the same bits (sizes and dtypes equal; -inf and signed zeros compared exactly).
bool same_bits(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes() || a.scalar_type() != b.scalar_type()) return false;
  const at::ScalarType bits = a.element_size() == 4 ? at::kInt : at::kShort;
  return at::equal(a.contiguous().view(bits), b.contiguous().view(bits));
}

// One call of the kernel entry point over the tensors of make_inputs: sparse_decode_cuda on the default stream
// for CUDA tensors (the partial workspaces and `tickets` [>= B * Hkv] used when splits > 1), the CPU twin
// otherwise. The outputs asked for are defined in the result: out / out_half [B, Hq, D] (fp32 / q's dtype),
// lse [B, Hq]; partial_out [splits, B * Hq, D] and partial_lse [splits, B * Hq] on CUDA with splits > 1.
struct KernelCall {
  at::Tensor out, out_half, lse, partial_out, partial_lse;
  kernels::Status status = kernels::Status::kOk;
};
KernelCall call_kernel(const Inputs& in, double scale, int64_t splits, const at::Tensor& tickets, bool fp32,
                       bool half) {
  const int64_t B = in.q.size(0), Hq = in.q.size(1), D = in.q.size(2), Hkv = in.k.size(1);
  const at::Tensor key_rows = in.key_rows.to(in.q.device());
  const auto f32 = in.q.options().dtype(at::kFloat);
  KernelCall r;
  kernels::SparseDecodeParams p;
  p.dtype = in.q.scalar_type() == at::kBFloat16 ? kernels::DType::kBFloat16 : kernels::DType::kFloat16;
  p.batch = B;
  p.q_heads = Hq;
  p.kv_heads = Hkv;
  p.head_dim = D;
  p.max_keys = key_rows.size(2);
  p.splits = splits;
  p.scale = scale;
  p.q = in.q.data_ptr();
  p.q_stride[0] = in.q.stride(0);
  p.q_stride[1] = in.q.stride(1);
  for (auto [rows, t] : {std::pair{&p.k, &in.k}, std::pair{&p.v, &in.v}}) {
    rows->base = t->data_ptr();
    rows->stride_b = t->stride(0);
    rows->stride_h = t->stride(1);
    rows->row_stride = t->stride(2);
  }
  p.key_rows = key_rows.data_ptr<int32_t>();
  r.lse = at::empty({B, Hq}, f32);
  p.lse = r.lse.data_ptr<float>();
  if (fp32) {
    r.out = at::empty({B, Hq, D}, f32);
    p.out = r.out.data_ptr<float>();
  }
  if (half) {
    r.out_half = at::empty({B, Hq, D}, in.q.options());
    p.out_half = r.out_half.data_ptr();
  }
  if (!in.q.is_cuda()) {
    r.status = kernels::sparse_decode_reference(p);
    return r;
  }
  if (splits > 1) {
    r.partial_out = at::empty({splits, B * Hq, D}, f32);
    r.partial_lse = at::empty({splits, B * Hq}, f32);
    p.partial_out = r.partial_out.data_ptr<float>();
    p.partial_lse = r.partial_lse.data_ptr<float>();
    p.tickets = tickets.data_ptr<int32_t>();
  }
  r.status = kernels::sparse_decode_cuda(p, nullptr);
  return r;
}

// Several splits merged in the kernel: the bits of lse_merge (lse_merge_cuda) over the same partials, within the
// tolerance of the float64 oracle, the half output the fp32 output rounded, the tickets left zero, and a second
// call the same bits. 33 and 40 splits: lanes loop over the parts, and some splits have no rows (lse -inf); the
// tensor-core kernel stages them through shared memory in 2-6 chunks (GSA_DECODE_STAGED_MERGE=0: in registers).
TEST(SparseDecode, InKernelSplitMergeMatchesLseMergeBits) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  const at::Device cuda(at::kCUDA, 0);
  for (const char* kernel : {"simt", "mma"}) {
    setenv("GSA_DECODE_KERNEL", kernel, 1);
    for (size_t ci = 0; ci < kCases.size(); ++ci) {
      const Case c = kCases[ci];
      std::mt19937 rng(ci);
      const Inputs in = make_inputs(c, ci, rng, cuda);
      const double scale = 1.0 / std::sqrt(double(c.d));
      const auto [want_out, want_lse] = oracle(in.q, in.k, in.v, in.key_rows, scale);
      const at::Tensor tickets = at::zeros({c.batch * c.hkv}, at::TensorOptions().dtype(at::kInt).device(cuda));
      for (int64_t splits : {2, 3, 7, 33, 40}) {
        SCOPED_TRACE(str_cat("GSA_DECODE_KERNEL=", kernel, " case ", ci, " splits ", splits));
        const KernelCall got = call_kernel(in, scale, splits, tickets, /*fp32=*/true, /*half=*/true);
        ASSERT_EQ(got.status, kernels::Status::kOk);
        const auto [merged_out, merged_lse] = lse_merge(got.partial_out, got.partial_lse);  // [B * Hq, D], [B * Hq]
        EXPECT_TRUE(same_bits(got.out, merged_out.view_as(got.out)));
        EXPECT_TRUE(same_bits(got.lse, merged_lse.view_as(got.lse)));
        EXPECT_TRUE(same_bits(got.out_half, got.out.to(c.dtype)));
        EXPECT_TRUE(test::relative_error_below(got.out, want_out,
                                               c.dtype == at::kHalf ? test::kFp16RelErr : test::kBf16RelErr));
        EXPECT_TRUE(test::all_close(got.lse, want_lse, 2e-3, 1e-3));
        EXPECT_EQ(tickets.count_nonzero().item<int64_t>(), 0);
        const KernelCall again = call_kernel(in, scale, splits, tickets, /*fp32=*/false, /*half=*/true);
        ASSERT_EQ(again.status, kernels::Status::kOk);
        EXPECT_TRUE(same_bits(again.out_half, got.out_half));
        EXPECT_TRUE(same_bits(again.lse, got.lse));
        EXPECT_EQ(tickets.count_nonzero().item<int64_t>(), 0);
      }
    }
  }
  unsetenv("GSA_DECODE_KERNEL");
}

// out_half: the fp32 output rounded to q's dtype, bit for bit, through the kernel entry point (both outputs of
// one call, or the half output alone) and through the binding's out_dtype; on the CPU twin and on CUDA.
TEST(SparseDecode, HalfOutputIsTheFp32OutputRounded) {
  for (const at::Device device : test::test_devices()) {
    for (size_t ci = 0; ci < kCases.size(); ++ci) {
      const Case c = kCases[ci];
      std::mt19937 rng(ci);
      const Inputs in = make_inputs(c, ci, rng, device);
      const double scale = 1.0 / std::sqrt(double(c.d));
      const at::Tensor tickets = at::zeros({c.batch * c.hkv}, at::TensorOptions().dtype(at::kInt).device(device));
      for (int64_t splits : {1, 3}) {
        SCOPED_TRACE(str_cat("case ", ci, " splits ", splits, " on ", device));
        const KernelCall both = call_kernel(in, scale, splits, tickets, /*fp32=*/true, /*half=*/true);
        const KernelCall half = call_kernel(in, scale, splits, tickets, /*fp32=*/false, /*half=*/true);
        ASSERT_EQ(both.status, kernels::Status::kOk);
        ASSERT_EQ(half.status, kernels::Status::kOk);
        EXPECT_TRUE(same_bits(both.out_half, both.out.to(c.dtype)));
        EXPECT_TRUE(same_bits(half.out_half, both.out_half));
        EXPECT_TRUE(same_bits(half.lse, both.lse));
        const DecodeAttention fp32 = sparse_decode(in.q, in.k, in.v, in.key_rows.to(device), scale, splits);
        const DecodeAttention rounded =
            sparse_decode(in.q, in.k, in.v, in.key_rows.to(device), scale, splits, nullptr, c.dtype);
        EXPECT_EQ(rounded.out.scalar_type(), c.dtype);
        EXPECT_TRUE(same_bits(rounded.out, fp32.out.to(c.dtype)));
        EXPECT_TRUE(same_bits(rounded.lse, fp32.lse));
      }
      const KernelCall neither = call_kernel(in, scale, 1, tickets, /*fp32=*/false, /*half=*/false);
      EXPECT_EQ(neither.status, kernels::Status::kInvalidArgument) << "no output asked for, on " << device;
    }
  }
}

// The binding on CUDA: repeated calls with several splits, and the call captured in a CUDA graph and replayed
// over inputs changed in place, give the bits of an eager call (the tickets reset themselves: no memset between
// calls or replays). The CPU twin: repeated calls give the same bits.
TEST(SparseDecode, RepeatedCallsAndGraphReplaysGiveTheSameBits) {
  const Case c = kCases[3];  // 8 KV heads, groups of 4
  for (const at::Device device : test::test_devices()) {
    SCOPED_TRACE(str_cat("on ", device));
    std::mt19937 rng(7);
    const Inputs in = make_inputs(c, 7, rng, device);
    const at::Tensor key_rows = in.key_rows.to(device);
    const at::Tensor begin = at::tensor(std::vector<int32_t>{5, 600}, at::kInt).to(device);
    const at::Tensor end = at::tensor(std::vector<int32_t>{105, 700}, at::kInt).to(device);
    const DecodeRange range{begin, end, 100};
    const double scale = 1.0 / std::sqrt(double(c.d));
    auto step = [&] {  // [B * Hq * (D + 1)]: the half output as fp32, then lse
      const DecodeAttention r = sparse_decode(in.q, in.k, in.v, key_rows, scale, 5, &range, c.dtype);
      return at::cat({r.out.to(at::kFloat).flatten(), r.lse.flatten()});
    };
    const at::Tensor first = step();
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(same_bits(step(), first)) << "call " << i;
    if (!device.is_cuda()) continue;
    DecodeStepGraph graph;
    for (int i = 0; i < 4; ++i) {
      in.q.normal_();  // in place: the captured kernels read the new queries
      const at::Tensor replayed = graph.run(step);
      EXPECT_TRUE(same_bits(replayed, step())) << "step " << i;
    }
    EXPECT_EQ(graph.captures(), 1);
  }
}

TEST(SparseDecode, RejectsBadInputsByName) {
  const at::Tensor q = at::randn({1, 4, 64}).to(at::kBFloat16), k = at::randn({1, 1, 10, 64}).to(at::kBFloat16);
  auto message = [&](auto fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] {
              sparse_decode(q.to(at::kFloat), k.to(at::kFloat), k.to(at::kFloat), at::zeros({1, 1, 2}, at::kInt), 1.0);
            }).find("bf16 or fp16"),
            std::string::npos);
  EXPECT_NE(message([&] {
              sparse_decode(q, k, k, at::full({1, 1, 2}, 10, at::kInt), 1.0);
            }).find("reach row 10"),
            std::string::npos);
  EXPECT_NE(message([&] {
              sparse_decode(q.narrow(1, 0, 3), k, k, at::zeros({1, 1, 2}, at::kInt), 1.0);
            }).find("1, 2, 4 or 8"),
            std::string::npos);
}

}  // namespace
}  // namespace gsa
