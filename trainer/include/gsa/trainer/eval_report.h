// How `gsa eval` shows its EvalReport (evaluator.h): a text table with the attention modes side by side, and a
// JSON document for scripts.
//
// Contract:
// - format_eval_table: a header line (task, samples, seed, chance accuracy), then one line per length: the
//   length, what a sample holds, the mean positions per sample in each mode (gists included), the accuracy in
//   each mode, the answer loss in each mode; columns in EvalSettings::modes order, labelled by mode name.
// - eval_report_json: one object {"task", "samples", "seed", "chance_accuracy", "checkpoint", "ranks",
//   "results": [{"length", "mean_raw_tokens", "description", "modes": {"<mode>": {"loss", "accuracy",
//   "mean_positions", "seconds"}}}]}; numbers are written with 17 significant digits (they read back exactly).
#pragma once

#include <string>

#include "gsa/trainer/evaluator.h"

namespace gsa {

std::string format_eval_table(const EvalReport& report);
std::string eval_report_json(const EvalReport& report, const std::string& checkpoint, int ranks);

}  // namespace gsa
