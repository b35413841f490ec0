// Sparse decode attention (runtime/sparse_decode.h) against a float64 oracle written here: batches of sequences
// with row lists of different lengths (-1 holes anywhere, one empty list), GQA 1/2/4/8, head dim 64/128,
// bf16/fp16, one split and several (the lse merge), with and without a contiguous row range per sequence, on the
// CPU twin and, with a device, both CUDA kernels (SIMT and tensor-core); the LibTorch reference backend on the
// same cases.
// Tolerance: tolerance.h's relative-error bound per dtype; lse within 2e-3 absolute.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>

#include "common/tolerance.h"
#include "gsa/runtime/error.h"
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

// The cases on one device; on CUDA with the kernel GSA_DECODE_KERNEL names (simt or mma, sparse_decode.h).
void expect_cases_match_oracle(at::Device device) {
  const std::vector<Case> cases = {{3, 4, 1, 64, 300, 90, at::kBFloat16},
                                   {2, 8, 1, 128, 500, 200, at::kHalf},
                                   {4, 2, 1, 64, 100, 33, at::kHalf},
                                   {2, 32, 8, 128, 700, 150, at::kBFloat16},
                                   {1, 4, 4, 128, 64, 70, at::kBFloat16}};
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    const Case c = cases[ci];
    at::manual_seed(ci);
    std::mt19937 rng(ci);
    const auto opts = at::TensorOptions().dtype(c.dtype).device(device);
    const at::Tensor q = at::randn({c.batch, c.hq, c.d}, opts);
    const at::Tensor k = at::randn({c.batch, c.hkv, c.rows, c.d}, opts),
                     v = at::randn({c.batch, c.hkv, c.rows, c.d}, opts);
    at::Tensor key_rows = at::full({c.batch, c.hkv, c.list}, -1, at::kInt);
    for (int64_t b = 0; b < c.batch; ++b) {
      for (int64_t h = 0; h < c.hkv; ++h) {
        if (b == 1 && h == 0) continue;  // one empty list
        const at::Tensor perm = at::randperm(c.rows, at::kLong);
        for (int64_t j = 0; j < c.list; ++j) {
          if (rng() % 5 != 0) key_rows[b][h][j] = perm[j % c.rows].item<int64_t>();  // -1 holes anywhere
        }
      }
    }
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
    for (int64_t splits : {int64_t{1}, int64_t{0}}) {
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
