// profile_ops: the operators a piece of work runs are counted by name with their calls, scopes are charged the
// device time of what they launch, and the Chrome trace is written. The oracle is the work itself: we know which
// operators it calls and how often.
#include <ATen/ATen.h>
#include <ATen/record_function.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "gsa/runtime/op_profile.h"

namespace gsa {
namespace {

const OpTotal* find(const std::vector<OpTotal>& list, const std::string& name) {
  for (const OpTotal& t : list) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

std::string temp_path(const char* name) { return std::string(::testing::TempDir()) + name; }

TEST(OpProfile, CountsCpuOperatorsAndWritesTheTrace) {
  const at::Tensor a = at::randn({64, 64});  // [64, 64]
  const std::string trace = temp_path("op_profile_trace.json");
  std::remove(trace.c_str());
  const OpProfile p = profile_ops(
      [&] {
        RECORD_FUNCTION("gsa::three_products", std::vector<c10::IValue>());
        at::Tensor x = a;
        for (int i = 0; i < 3; ++i) x = at::mm(x, a);
      },
      /*cuda=*/false, trace);
  const OpTotal* mm = find(p.cpu_ops, "aten::mm");
  ASSERT_NE(mm, nullptr) << p.table(20);
  EXPECT_EQ(mm->calls, 3);
  const OpTotal* scope = find(p.cpu_ops, "gsa::three_products");
  ASSERT_NE(scope, nullptr) << p.table(20);
  EXPECT_EQ(scope->calls, 1);
  EXPECT_GE(scope->seconds, mm->seconds);  // inclusive: the scope holds the products
  EXPECT_LE(scope->seconds, p.wall_seconds);
  EXPECT_TRUE(p.device_ops.empty());
  EXPECT_EQ(p.device_seconds, 0);
  // Sorted, largest first.
  for (size_t i = 1; i < p.cpu_ops.size(); ++i) EXPECT_GE(p.cpu_ops[i - 1].seconds, p.cpu_ops[i].seconds);
  std::ifstream file(trace);
  ASSERT_TRUE(file.good()) << "no trace at " << trace;
  std::stringstream text;
  text << file.rdbuf();
  EXPECT_NE(text.str().find("traceEvents"), std::string::npos);
  EXPECT_NE(text.str().find("gsa::three_products"), std::string::npos);
  EXPECT_NE(p.table(5).find("aten::mm"), std::string::npos);
}

TEST(OpProfile, AProfilerErrorLeavesNoProfilerRunning) {
  EXPECT_THROW(profile_ops([] { throw std::runtime_error("work failed"); }, false, ""), std::runtime_error);
  // A second profile works: the first one was switched off.
  const OpProfile p = profile_ops([] { at::ones({4}).add_(1); }, false, "");
  EXPECT_NE(find(p.cpu_ops, "aten::add_"), nullptr) << p.table(20);
}

TEST(OpProfile, ChargesDeviceTimeToScopesAndBackwardNodes) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  const at::TensorOptions cuda = at::TensorOptions().device(at::kCUDA);
  const at::Tensor a = at::randn({512, 512}, cuda);                          // [512, 512]
  const at::Tensor w = at::randn({512, 512}, cuda).set_requires_grad(true);  // [512, 512]
  const OpProfile p = profile_ops(
      [&] {
        at::Tensor y;
        {
          RECORD_FUNCTION("gsa::forward_products", std::vector<c10::IValue>());
          y = at::mm(at::mm(a, w), w);
        }
        y.sum().backward();
      },
      /*cuda=*/true, "");
  EXPECT_GT(p.device_seconds, 0);
  const OpTotal* forward = find(p.scopes, "gsa::forward_products");
  ASSERT_NE(forward, nullptr) << p.table(20);
  EXPECT_GE(forward->calls, 2);  // at least one kernel per product
  const OpTotal* backward = find(p.scopes, "autograd::engine::evaluate_function: MmBackward0");
  ASSERT_NE(backward, nullptr) << p.table(20);
  EXPECT_GE(backward->calls, 4);  // two products' gradients, each at least one kernel per input
  double charged = 0;
  for (const OpTotal& s : p.scopes) charged += s.seconds;
  EXPECT_NEAR(charged, p.device_seconds, 1e-9);  // every device op is charged exactly once
}

}  // namespace
}  // namespace gsa
