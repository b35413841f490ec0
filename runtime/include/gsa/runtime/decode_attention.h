// One layer's attention for a decode step of a DecodePlan: the LayerAttention that LlamaModel::forward calls
// per layer when it runs the step's B queries (one per sequence).
//
// Contract: attend() writes the step's K/V ([B, Hkv, 1, D]) into the cache at each sequence's position, then
// attends each query over its prompt rows, its generated range and, in a layer where suffix queries select, the
// chunks and gists that select_chunks picks for it (minus the rows its list already holds), as the mask rule
// and selection.h define; the result equals gsa_attention over a plan of the whole rows at the query positions.
// Runs the sparse decode kernels (sparse_decode.h) on CUDA bf16/fp16 inputs (backend AUTO) or where forced
// (KERNELS), LibTorch ops otherwise (REFERENCE, or AUTO on other inputs). Inference only.
#pragma once

#include <cstdint>

#include <ATen/ATen.h>

#include "gsa/config/options.h"
#include "gsa/runtime/decode_plan.h"
#include "gsa/runtime/llama_model.h"

namespace gsa {

class DecodeLayerAttention : public LayerAttention {
 public:
  // cache: batch row b holds sequence b of the plan; both must outlive this object.
  DecodeLayerAttention(const DecodePlan& plan, const AttentionOptions& options, KvCache& cache);

  // q [B, Hq, 1, D], k, v [B, Hkv, 1, D] (post-RoPE) -> [B, Hq, 1, D] in q's dtype.
  at::Tensor attend(int64_t layer, bool layer_selects, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                    double scale) override;

  // The rows (beyond the generated range) each query attends in a layer: [B, Hkv, R] int32, -1 padding.
  // q [B, Hq, D]; k_cache the layer's cache keys [B, Hkv, C, D].
  at::Tensor key_rows(bool layer_selects, const at::Tensor& q, const at::Tensor& k_cache) const;

 private:
  const DecodePlan& plan_;
  AttentionOptions options_;
  KvCache& cache_;
};

}  // namespace gsa
