// The block-sparse attention CUDA kernels against the float64 dense oracle (tests/common/sparse_attention_check):
// random packed layouts with documents long enough for many query and key tiles (lengths not multiples of any
// tile), 1-3 levels, GQA 1/2/4/8, head dim 64/128, bf16/fp16, cpt and selective layers, split backward items
// (atomic dk/dv, dq by atomics in the key-tile pass) and, in the last two cases, one item per key tile (dq by the
// query-block pass: the deterministic backward). Skips itself without a CUDA device.
#include <gtest/gtest.h>

#include "common/sparse_attention_check.h"

namespace gsa {
namespace {

std::vector<test::SparseCase> cases() {
  std::vector<test::SparseCase> out;
  auto add = [&](int64_t levels, int64_t chunk, int64_t fanout, int64_t sink, int64_t prev, int64_t hq, int64_t hkv,
                 int64_t d, bool selective, bool keep, at::ScalarType dtype, int64_t max_doc,
                 int64_t max_backward_tiles = 2) {
    test::SparseCase c;
    c.levels = levels, c.chunk = chunk, c.fanout = fanout, c.sink = sink, c.prev = prev;
    c.hq = hq, c.hkv = hkv, c.head_dim = d, c.selective = selective, c.keep_gists = keep, c.dtype = dtype;
    c.max_doc_tokens = max_doc;
    c.max_backward_tiles = max_backward_tiles;
    out.push_back(c);
  };
  add(1, 16, 4, 3, 1, 4, 1, 128, false, false, at::kBFloat16, 700);
  add(1, 8, 4, 3, 1, 8, 1, 64, false, false, at::kHalf, 600);
  add(1, 4, 2, 0, 0, 1, 1, 128, true, false, at::kBFloat16, 300);
  add(2, 4, 4, 3, 1, 2, 1, 64, false, false, at::kBFloat16, 900);
  add(2, 8, 2, 2, 2, 4, 2, 128, true, false, at::kHalf, 500);
  add(3, 2, 3, 1, 1, 4, 1, 64, true, true, at::kBFloat16, 400);
  add(1, 16, 4, 3, 1, 32, 8, 128, false, false, at::kBFloat16, 400);
  add(2, 8, 2, 2, 2, 4, 2, 128, true, false, at::kBFloat16, 500, /*max_backward_tiles=*/0);
  add(1, 8, 4, 3, 1, 8, 1, 64, false, false, at::kHalf, 600, /*max_backward_tiles=*/0);
  return out;
}

class SparseAttentionGpu : public ::testing::TestWithParam<int> {};

TEST_P(SparseAttentionGpu, KernelsMatchFloat64Oracle) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  test::check_sparse_attention(cases()[GetParam()], at::Device(at::kCUDA, 0), 900 + GetParam());
  test::check_sparse_attention(cases()[GetParam()], at::Device(at::kCUDA, 0), 1900 + GetParam());
}

INSTANTIATE_TEST_SUITE_P(Cases, SparseAttentionGpu, ::testing::Range(0, static_cast<int>(cases().size())));

}  // namespace
}  // namespace gsa
