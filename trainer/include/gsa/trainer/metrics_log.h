// metrics.jsonl: one JSON object per training step ({"step":..,"loss":..,"accuracy":..,"lr":..,"grad_norm":..,
// "tokens_per_s":..}), doubles in their shortest round-trip form (a loss reads back as the very double trained
// with; non-finite values are written as null).
//
// Contract: MetricsLog(path, first_step) starts the log of a run whose first step is first_step: it keeps the
// complete lines of an existing file whose "step" is below first_step (a resume from a checkpoint of
// first_step steps; 0, a fresh run, keeps none) and drops the rest, including a partial last line, replacing the
// file atomically (write_file_atomic); a missing file starts empty. append() writes each line with a single
// write(2) on an O_APPEND descriptor, so a kill leaves only whole lines. Throws gsa::Error naming the file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "gsa/runtime/append_file.h"

namespace gsa {

struct StepMetrics {
  int64_t step = 0;         // 0-based index of the step
  double loss = 0;
  double accuracy = 0;      // answers right (every token of a run of labelled tokens), teacher forced, this batch
  double lr = 0;
  double grad_norm = 0;
  double tokens_per_second = 0;
};

// One line of metrics.jsonl, with its '\n'.
std::string metrics_json_line(const StepMetrics& m);

class MetricsLog {
 public:
  MetricsLog(const std::string& path, int64_t first_step);

  void append(const StepMetrics& m) { file_->append(metrics_json_line(m)); }
  const std::string& path() const { return file_->path(); }

 private:
  std::unique_ptr<AppendFile> file_;
};

}  // namespace gsa
