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

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>

#include "gsa/config/options.h"
#include "gsa/runtime/decode_caches.h"
#include "gsa/runtime/decode_plan.h"
#include "gsa/runtime/llama_model.h"

namespace gsa {

// Whether a decode step of `model` can be captured as a CUDA graph (decode_graph.h): a CUDA device,
// attention.cuda_graphs, and the decode kernels apply to the model's dtype and heads (the reference path
// synchronises with the host inside the step, which a capture forbids).
bool decode_step_capturable(const LlamaModel& model, const AttentionOptions& attention);

// Whether a decode step over these caches takes the fused path (LayerAttention::takes_fused_qkv): the decode
// kernels run (backend AUTO on CUDA with the kernels' dtypes and heads, or KERNELS: their CPU twins on the CPU)
// and the activations have the caches' dtype.
bool decode_takes_fused_qkv(const DecodeCaches& caches, const AttentionOptions& options, at::ScalarType dtype,
                            int64_t q_heads, int64_t head_dim);

class DecodeLayerAttention : public LayerAttention {
 public:
  // caches: sequence b of the plan is sequence b of the caches (one batched cache, or one cache per sequence);
  // the plan and the caches must outlive this object.
  DecodeLayerAttention(const DecodePlan& plan, const AttentionOptions& options, DecodeCaches& caches);
  // The same over one batched cache (batch row b holds sequence b).
  DecodeLayerAttention(const DecodePlan& plan, const AttentionOptions& options, KvCache& cache);

  // q [B, Hq, 1, D], k, v [B, Hkv, 1, D] (post-RoPE) -> [B, Hq, 1, D] in q's dtype.
  at::Tensor attend(int64_t layer, bool layer_selects, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                    double scale) override;
  // The fused path (LayerAttention): whenever the decode kernels run (backend AUTO on CUDA with the kernels'
  // dtypes and heads, or KERNELS: their CPU twins on the CPU); the model stores the step's K/V at the plan's
  // positions (step_kv_rows), then the same attention as attend().
  bool takes_fused_qkv(at::ScalarType dtype, int64_t q_heads, int64_t head_dim) const override;
  StepKvRows step_kv_rows(int64_t layer) override;
  at::Tensor attend_rotated(int64_t layer, bool layer_selects, const at::Tensor& q1, double scale) override;

  // The rows (beyond the generated range) each query attends in a layer: [B, Hkv, R] int32, -1 padding.
  // q [B, Hq, D]. On the kernels' path with every sequence selecting, the result is one buffer of this object
  // that the next selective layer's call overwrites (this object lives for one step's forward).
  at::Tensor key_rows(int64_t layer, bool layer_selects, const at::Tensor& q);

 private:
  bool use_kernels(const at::Tensor& q, int64_t layer) const;
  void check_step(int64_t queries) const;  // one query per sequence, each position inside its cache
  // The step's attention over the cache (K/V of the step already stored): q1 [B, Hq, D] -> [B, Hq, D].
  at::Tensor attend_stored(int64_t layer, bool layer_selects, const at::Tensor& q1, double scale);

  const DecodePlan& plan_;
  AttentionOptions options_;
  std::unique_ptr<DecodeCaches> owned_;  // the batched-cache constructor's
  DecodeCaches& caches_;
  at::Tensor selective_rows_;  // [B, Hkv, R + S]: the step's prompt rows, then the selecting layer's S slots
};

}  // namespace gsa
