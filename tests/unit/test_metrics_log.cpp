// metrics.jsonl (trainer/metrics_log.h): exact round-trip doubles, whole lines only, a fresh run truncates, a
// resume keeps the lines before its first step and drops a partial last line.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "gsa/runtime/file_util.h"
#include "gsa/trainer/metrics_log.h"

namespace gsa {
namespace {

std::string test_path() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string dir = std::string(GSA_BINARY_DIR) + "/test_tmp/metrics_log/" + info->name();
  remove_tree(dir);
  make_directories(dir);
  return join_path(dir, "metrics.jsonl");
}

StepMetrics metrics(int64_t step, double loss) {
  StepMetrics m;
  m.step = step;
  m.loss = loss;
  m.accuracy = 0.25;
  m.lr = 0.1 + 0.2;
  m.grad_norm = std::numeric_limits<double>::infinity();
  m.tokens_per_second = 1234.5;
  return m;
}

TEST(MetricsLog, LinesHoldExactDoubles) {
  const double loss = 2.7725887222397811;  // needs 17 significant digits
  const std::string line = metrics_json_line(metrics(3, loss));
  EXPECT_EQ(line, "{\"step\":3,\"loss\":2.772588722239781,\"accuracy\":0.25,\"lr\":0.30000000000000004,"
                  "\"grad_norm\":null,\"tokens_per_s\":1234.5}\n");
  const size_t at = line.find("\"loss\":") + 7;
  EXPECT_EQ(std::strtod(line.c_str() + at, nullptr), loss);
}

TEST(MetricsLog, FreshRunTruncatesResumeKeepsEarlierSteps) {
  const std::string path = test_path();
  {
    MetricsLog log(path, 0);
    for (int64_t step = 0; step < 5; ++step) log.append(metrics(step, 1.0 + step));
  }
  const std::string five = read_file(path);
  EXPECT_EQ(std::count(five.begin(), five.end(), '\n'), 5);
  // A killed run's partial last line, then a resume from a checkpoint of 3 steps.
  write_file_atomic(path, five + "{\"step\":5,\"lo");
  {
    MetricsLog log(path, 3);
    EXPECT_EQ(read_file(path), metrics_json_line(metrics(0, 1)) + metrics_json_line(metrics(1, 2)) +
                                   metrics_json_line(metrics(2, 3)));
    log.append(metrics(3, 9));
  }
  EXPECT_EQ(read_file(path), metrics_json_line(metrics(0, 1)) + metrics_json_line(metrics(1, 2)) +
                                 metrics_json_line(metrics(2, 3)) + metrics_json_line(metrics(3, 9)));
  // A fresh run never appends onto an old file.
  { MetricsLog log(path, 0); }
  EXPECT_EQ(read_file(path), "");
}

}  // namespace
}  // namespace gsa
