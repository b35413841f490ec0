// The greedy choice of a decode step where its logits are, so that a captured decode graph can end with it
// (Generator::decode_ahead): over logits [V] the first id of the largest value, where the ids in forbidden[0,
// forbidden_count) and those at or above id_limit count as -inf (what LibTorch's argmax of the masked fp32 row
// gives: Sampler's greedy sample), and whether an allowed logit is NaN (the caller refuses the step).
// out [2] int64: {id, has_nan}. One CTA of 1,024 threads, the forbidden ids as a shared-memory bitmap: V up to
// kGreedyChoiceMaxVocab (a 128K vocabulary, 256 KB of bf16 logits, takes a few microseconds).
#pragma once

#include <cstdint>

#include "gsa/kernels/lse_merge.h"  // Status

namespace gsa::kernels {

enum class LogitType { kBFloat16 = 0, kFloat16 = 1, kFloat32 = 2 };

inline constexpr int64_t kGreedyChoiceMaxVocab = int64_t{32} * 12288;  // 48 KB of bitmap words

struct GreedyChoiceParams {
  LogitType dtype = LogitType::kFloat32;
  int64_t vocab = 0;
  const void* logits = nullptr;          // [V], contiguous
  const int64_t* forbidden = nullptr;    // [forbidden_count] ids never chosen (any order; outside [0, V): ignored)
  int32_t forbidden_count = 0;
  int64_t id_limit = 0;                  // ids >= id_limit are never chosen (V: none)
  int64_t* out = nullptr;                // [2]: id, has_nan
};

Status greedy_choice_cuda(const GreedyChoiceParams& params, void* stream);
Status greedy_choice_reference(const GreedyChoiceParams& params);

}  // namespace gsa::kernels
