// metrics.jsonl; the contract is in gsa/trainer/metrics_log.h.
#include "gsa/trainer/metrics_log.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

#include "gsa/runtime/error.h"
#include "gsa/runtime/file_util.h"

namespace gsa {
namespace {

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), v);
  return std::string(buffer, result.ptr);
}

// The "step" of one line written by metrics_json_line, or -1 when the line has none.
int64_t step_of_line(const std::string& line) {
  constexpr char kKey[] = "{\"step\":";
  if (line.compare(0, sizeof(kKey) - 1, kKey) != 0) return -1;
  const char* begin = line.c_str() + sizeof(kKey) - 1;
  char* end = nullptr;
  const long long step = std::strtoll(begin, &end, 10);
  return end == begin ? -1 : step;
}

}  // namespace

std::string metrics_json_line(const StepMetrics& m) {
  return str_cat("{\"step\":", m.step, ",\"loss\":", json_number(m.loss), ",\"accuracy\":", json_number(m.accuracy),
                 ",\"lr\":", json_number(m.lr), ",\"grad_norm\":", json_number(m.grad_norm),
                 ",\"tokens_per_s\":", json_number(m.tokens_per_second), "}\n");
}

MetricsLog::MetricsLog(const std::string& path, int64_t first_step) {
  std::string kept;
  if (first_step > 0 && path_exists(path)) {
    const std::string old = read_file(path);
    for (size_t begin = 0; begin < old.size();) {
      const size_t end = old.find('\n', begin);
      if (end == std::string::npos) break;  // a partial last line: a killed writer's
      const std::string line = old.substr(begin, end - begin + 1);
      const int64_t step = step_of_line(line);
      if (step >= 0 && step < first_step) kept += line;
      begin = end + 1;
    }
  }
  write_file_atomic(path, kept);
  file_ = std::make_unique<AppendFile>(path, /*create_new=*/false);
}

}  // namespace gsa
