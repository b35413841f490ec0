// lse_merge: the CPU reference twin and the LibTorch binding against a closed form computed independently with
// ATen float64 ops (logsumexp, softmax weights), over random P, R, D with empty (-inf) parts and empty rows.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <tuple>

#include <ATen/ATen.h>

#include "gsa/kernels/lse_merge.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/lse_merge.h"

namespace gsa {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct Case {
  at::Tensor parts_out;  // [P, R, D] float32; rows of empty parts hold NaN (they must not be read)
  at::Tensor parts_lse;  // [P, R] float32; -inf marks an empty part; rows r % 7 == 3 are empty in every part
};

Case make_case(int64_t P, int64_t R, int64_t D, uint64_t seed) {
  at::manual_seed(seed);
  at::Tensor lse = at::randn({P, R}) * 4.0;             // [P, R]
  at::Tensor empty = at::rand({P, R}) < 0.25;           // [P, R] bool
  empty.index_put_({at::indexing::Slice(), at::indexing::Slice(3, at::indexing::None, 7)}, true);
  lse.masked_fill_(empty, -kInf);
  at::Tensor out = at::randn({P, R, D});                // [P, R, D]
  out.masked_fill_(empty.unsqueeze(-1), kNaN);
  return {out, lse};
}

// The closed form in float64: lse = logsumexp over parts; out = softmax(lse_p) weighted sum, with empty parts
// (and therefore empty rows) weighted 0. Returns (out [R, D], lse [R]) float64.
std::pair<at::Tensor, at::Tensor> closed_form(const Case& c) {
  const at::Tensor lse64 = c.parts_lse.to(at::kDouble);                   // [P, R]
  const at::Tensor empty_part = at::isinf(lse64);                         // [P, R]
  const at::Tensor empty_row = empty_part.all(0);                         // [R]
  const at::Tensor lse = at::logsumexp(lse64, 0);                          // [R]
  at::Tensor weights = at::softmax(lse64, 0);                              // [P, R], NaN on empty rows
  weights = weights.masked_fill(empty_row.unsqueeze(0).expand_as(weights), 0.0);
  const at::Tensor values = c.parts_out.to(at::kDouble).masked_fill(empty_part.unsqueeze(-1), 0.0);  // [P, R, D]
  const at::Tensor out = (weights.unsqueeze(-1) * values).sum(0);         // [R, D]
  return {out, lse};
}

// |got - want| <= atol + rtol * |want|, with -inf required exactly where want is -inf. Prints the first 10
// mismatches with their flat indices.
void expect_close(const at::Tensor& got, const at::Tensor& want, double atol, double rtol, const char* what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const at::Tensor g = got.to(at::kDouble).contiguous().flatten();
  const at::Tensor w = want.to(at::kDouble).contiguous().flatten();
  const double* gp = g.data_ptr<double>();
  const double* wp = w.data_ptr<double>();
  int64_t bad = 0;
  for (int64_t i = 0; i < g.numel(); ++i) {
    const bool ok = std::isinf(wp[i]) ? gp[i] == wp[i] : std::abs(gp[i] - wp[i]) <= atol + rtol * std::abs(wp[i]);
    if (!ok && bad++ < 10) ADD_FAILURE() << what << "[" << i << "]: got " << gp[i] << ", want " << wp[i];
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << g.numel() << " elements out of tolerance";
}

class LseMergeSweep : public ::testing::TestWithParam<std::tuple<int64_t, int64_t>> {};

TEST_P(LseMergeSweep, ReferenceTwinMatchesClosedFormAndWritesEveryElement) {
  const auto [P, D] = GetParam();
  const int64_t R = 37;
  const Case c = make_case(P, R, D, 100 + P * 1000 + D);
  at::Tensor out = at::full({R, D}, kNaN, at::kFloat);  // [R, D] poisoned
  at::Tensor lse = at::full({R}, kNaN, at::kFloat);     // [R] poisoned
  kernels::LseMergeParams params;
  params.partial_out = c.parts_out.data_ptr<float>();
  params.partial_lse = c.parts_lse.data_ptr<float>();
  params.out = out.data_ptr<float>();
  params.lse = lse.data_ptr<float>();
  params.num_parts = P;
  params.rows = R;
  params.dim = D;
  ASSERT_EQ(kernels::lse_merge_reference(params), kernels::Status::kOk);

  EXPECT_FALSE(at::isnan(out).any().item<bool>()) << "an output element was not written";
  EXPECT_FALSE(at::isnan(lse).any().item<bool>()) << "an lse element was not written";
  const auto [want_out, want_lse] = closed_form(c);
  expect_close(out, want_out, 1e-6, 1e-6, "out");
  expect_close(lse, want_lse, 1e-6, 1e-6, "lse");
  // Rows whose parts are all empty: out 0, lse -inf.
  for (int64_t r = 3; r < R; r += 7) {
    EXPECT_EQ(lse[r].item<float>(), -std::numeric_limits<float>::infinity());
    EXPECT_EQ(out[r].abs().max().item<float>(), 0.0f);
  }
}

TEST_P(LseMergeSweep, BindingMatchesClosedForm) {
  const auto [P, D] = GetParam();
  const int64_t R = 53;
  const Case c = make_case(P, R, D, 200 + P * 1000 + D);
  const auto [out, lse] = lse_merge(c.parts_out, c.parts_lse);
  ASSERT_EQ(out.sizes(), (at::IntArrayRef{R, D}));
  ASSERT_EQ(lse.sizes(), (at::IntArrayRef{R}));
  EXPECT_EQ(out.scalar_type(), at::kFloat);
  EXPECT_EQ(lse.scalar_type(), at::kFloat);
  EXPECT_FALSE(at::isnan(out).any().item<bool>());
  const auto [want_out, want_lse] = closed_form(c);
  expect_close(out, want_out, 1e-6, 1e-6, "out");
  expect_close(lse, want_lse, 1e-6, 1e-6, "lse");
}

INSTANTIATE_TEST_SUITE_P(PartsAndDims, LseMergeSweep,
                         ::testing::Combine(::testing::Values<int64_t>(1, 2, 5), ::testing::Values<int64_t>(1, 16, 128)),
                         [](const auto& info) {
                           return "P" + std::to_string(std::get<0>(info.param)) + "_D" +
                                  std::to_string(std::get<1>(info.param));
                         });

TEST(LseMerge, SinglePartIsTheIdentity) {
  const Case c = make_case(1, 20, 8, 5);
  const auto [out, lse] = lse_merge(c.parts_out, c.parts_lse);
  const at::Tensor finite = at::isfinite(c.parts_lse[0]);  // [R]
  EXPECT_TRUE(at::equal(lse, c.parts_lse[0]));
  EXPECT_TRUE(at::allclose(out.index({finite}), c.parts_out[0].index({finite}), 1e-6, 1e-7));
}

TEST(LseMerge, LargeLseDoesNotOverflow) {
  // exp(1000) overflows float and double; the running-max form must not.
  // Row 0: parts (1000, 1000) with outputs (1, 3); row 1: parts (-1000, 999) with outputs (2, 4).
  at::Tensor lse = at::tensor({1000.0f, -1000.0f, 1000.0f, 999.0f}).reshape({2, 2});  // [P=2, R=2]
  at::Tensor out = at::tensor({1.0f, 2.0f, 3.0f, 4.0f}).reshape({2, 2, 1});          // [P=2, R=2, D=1]
  const auto [o, l] = lse_merge(out, lse);
  EXPECT_NEAR(l[0].item<float>(), 1000.0 + std::log(2.0), 1e-3);
  EXPECT_NEAR(o[0][0].item<float>(), 2.0, 1e-6);  // equal weights: (1 + 3) / 2
  EXPECT_NEAR(l[1].item<float>(), 999.0, 1e-3);   // exp(-1999) vanishes
  EXPECT_NEAR(o[1][0].item<float>(), 4.0, 1e-6);
}

TEST(LseMerge, NonContiguousInputs) {
  const Case c = make_case(3, 11, 16, 9);
  const at::Tensor out_t = c.parts_out.permute({1, 0, 2}).contiguous().permute({1, 0, 2});  // [P, R, D] strided
  const at::Tensor lse_t = c.parts_lse.t().contiguous().t();                                // [P, R] strided
  ASSERT_FALSE(out_t.is_contiguous());
  ASSERT_FALSE(lse_t.is_contiguous());
  const auto [out, lse] = lse_merge(out_t, lse_t);
  const auto [want_out, want_lse] = closed_form(c);
  expect_close(out, want_out, 1e-6, 1e-6, "out");
  expect_close(lse, want_lse, 1e-6, 1e-6, "lse");
}

TEST(LseMerge, ZeroRows) {
  const auto [out, lse] = lse_merge(at::zeros({3, 0, 4}), at::zeros({3, 0}));
  EXPECT_EQ(out.sizes(), (at::IntArrayRef{0, 4}));
  EXPECT_EQ(lse.sizes(), (at::IntArrayRef{0}));
}

TEST(LseMerge, ResultsCarryNoAutograd) {
  at::Tensor out = at::randn({2, 3, 4}).requires_grad_(true);
  at::Tensor lse = at::randn({2, 3}).requires_grad_(true);
  const auto [o, l] = lse_merge(out, lse);
  EXPECT_FALSE(o.requires_grad());
  EXPECT_FALSE(l.requires_grad());
}

TEST(LseMerge, BindingRejectsBadInputs) {
  const at::Tensor out = at::zeros({2, 3, 4});  // [P, R, D]
  const at::Tensor lse = at::zeros({2, 3});     // [P, R]
  EXPECT_THROW(lse_merge(out.to(at::kDouble), lse), Error);
  EXPECT_THROW(lse_merge(out, lse.to(at::kHalf)), Error);
  EXPECT_THROW(lse_merge(out[0], lse), Error);            // 2-d parts_out
  EXPECT_THROW(lse_merge(out, lse[0]), Error);            // 1-d parts_lse
  EXPECT_THROW(lse_merge(out, at::zeros({2, 4})), Error);  // R mismatch
  EXPECT_THROW(lse_merge(out, at::zeros({3, 3})), Error);  // P mismatch
  EXPECT_THROW(lse_merge(at::zeros({0, 3, 4}), at::zeros({0, 3})), Error);  // P = 0
  EXPECT_THROW(lse_merge(at::zeros({2, 3, 0}), lse), Error);               // D = 0
  EXPECT_THROW(lse_merge(at::Tensor(), lse), Error);
  try {
    lse_merge(out, at::zeros({2, 4}));
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[2, 4]"), std::string::npos) << e.what();
  }
}

TEST(LseMerge, KernelEntryPointsRejectBadParams) {
  float buf[8] = {};
  kernels::LseMergeParams good;
  good.partial_out = buf;
  good.partial_lse = buf;
  good.out = buf;
  good.lse = buf;
  good.num_parts = 1;
  good.rows = 1;
  good.dim = 1;
  auto with = [&](auto mutate) {
    kernels::LseMergeParams p = good;
    mutate(p);
    return p;
  };
  const kernels::LseMergeParams bad[] = {
      with([](auto& p) { p.partial_out = nullptr; }), with([](auto& p) { p.partial_lse = nullptr; }),
      with([](auto& p) { p.out = nullptr; }),         with([](auto& p) { p.lse = nullptr; }),
      with([](auto& p) { p.num_parts = 0; }),         with([](auto& p) { p.dim = 0; }),
      with([](auto& p) { p.rows = -1; }),
  };
  for (const auto& p : bad) {
    EXPECT_EQ(kernels::lse_merge_reference(p), kernels::Status::kInvalidArgument);
#ifdef GSA_HAVE_CUDA
    EXPECT_EQ(kernels::lse_merge_cuda(p, nullptr), kernels::Status::kInvalidArgument);
#else
    EXPECT_EQ(kernels::lse_merge_cuda(p, nullptr), kernels::Status::kNoCuda);
#endif
  }
  // Zero rows with null pointers is a valid, empty merge (nothing launched).
  kernels::LseMergeParams empty;
  empty.num_parts = 2;
  empty.dim = 4;
  EXPECT_EQ(kernels::lse_merge_reference(empty), kernels::Status::kOk);
#ifdef GSA_HAVE_CUDA
  EXPECT_EQ(kernels::lse_merge_cuda(empty, nullptr), kernels::Status::kOk);
#endif
  EXPECT_STREQ(kernels::status_string(kernels::Status::kInvalidArgument), "invalid argument");
}

}  // namespace
}  // namespace gsa
