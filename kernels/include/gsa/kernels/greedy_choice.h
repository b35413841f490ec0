// The greedy choice of a decode step where its logits are, so that a captured decode graph can end with it
// (Generator::decode_ahead): over logits [V] the first id of the largest value, where the ids in forbidden[0,
// forbidden_count) and those at or above id_limit count as -inf (what LibTorch's argmax of the masked fp32 row
// gives: Sampler's greedy sample), and whether an allowed logit is NaN (the caller refuses the step).
// out [2] int64: {id, has_nan}. One CTA per 1,024 ids, their best folded into a 16-byte workspace that every
// launch leaves zero (zero it once when it is allocated; launches sharing one workspace must not overlap): V up to
// kGreedyChoiceMaxVocab, logits at any alignment.
#pragma once

#include <cstdint>

#include "gsa/kernels/lse_merge.h"  // Status

namespace gsa::kernels {

enum class LogitType { kBFloat16 = 0, kFloat16 = 1, kFloat32 = 2 };

inline constexpr int64_t kGreedyChoiceMaxVocab = int64_t{1} << 22;  // a grid of 4,096 CTAs

// Device memory the CTAs of one launch meet in (zero between launches).
struct GreedyChoiceWorkspace {
  uint64_t best;      // the largest (order key of value, ~id) so far
  uint32_t has_nan;   // 1 once a CTA saw an allowed NaN
  uint32_t arrived;   // CTAs done
};

struct GreedyChoiceParams {
  LogitType dtype = LogitType::kFloat32;
  int64_t vocab = 0;
  const void* logits = nullptr;          // [V], contiguous
  const int64_t* forbidden = nullptr;    // [forbidden_count] ids never chosen (any order; outside [0, V): ignored)
  int32_t forbidden_count = 0;
  int64_t id_limit = 0;                  // ids >= id_limit are never chosen (V: none)
  int64_t* out = nullptr;                // [2]: id, has_nan
  GreedyChoiceWorkspace* workspace = nullptr;  // CUDA only: zero before the launch, zero after it
};

Status greedy_choice_cuda(const GreedyChoiceParams& params, void* stream);
Status greedy_choice_reference(const GreedyChoiceParams& params);

}  // namespace gsa::kernels
