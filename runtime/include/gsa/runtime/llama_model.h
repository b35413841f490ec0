// The Llama-family decoder (RMSNorm, RoPE with optional llama3 scaling, SwiGLU, GQA, optional tied embeddings,
// Qwen2's q/k/v projection biases when options.attention_bias) with GSA attention in every layer. Parameters
// live in a name -> tensor map under Hugging Face Llama / Qwen2 names (model.embed_tokens.weight,
// model.layers.{i}.self_attn.{q,k,v,o}_proj.weight, model.layers.{i}.self_attn.{q,k,v}_proj.bias (Qwen2),
// model.layers.{i}.mlp.{gate,up,down}_proj.weight,
// model.layers.{i}.{input,post_attention}_layernorm.weight, model.norm.weight, lm_head.weight), so a
// safetensors file from transformers loads as is.
//
// Contract:
// - forward() runs the plan's queries: training and prefill pass every position (q_begin 0); a decode step
//   passes one. With a KvCache, the new tokens' K/V are written at their positions and attention reads the
//   cache (the cache is never gathered); without one, q_begin must be 0 and the tokens are the whole rows.
// - In layers >= first_selective_layer of a selective forward, the plan's selective (suffix) queries attend
//   through chunk selection; every other query uses the gist mask.
// - RMSNorm and the logits are computed in fp32 (as transformers does); parameters and activations in the
//   model dtype (fp32 or bf16).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "gsa/config/options.h"
#include "gsa/runtime/attention_plan.h"
#include "gsa/runtime/decode_step_ops.h"  // StepKvRows
#include "gsa/runtime/rope.h"
#include "gsa/runtime/safetensors.h"

namespace gsa {

// Per-layer keys and values of one batch of sequences, preallocated to a capacity.
struct KvCache {
  std::vector<at::Tensor> k;  // [num_layers] of [B, Hkv, capacity, D] (post-RoPE)
  std::vector<at::Tensor> v;  // [num_layers] of [B, Hkv, capacity, D]
  int64_t capacity() const { return k.empty() ? 0 : k[0].size(2); }
};

// One layer's attention over the forward's own queries; the model calls it once per layer, in layer order.
// Sequence-parallel attention and distributed decode plug in here (parallel/).
// q [B, Hq, Tq, D], k, v [B, Hkv, Tq, D] (post-RoPE) of the forward's tokens -> [B, Hq, Tq, D] in q's dtype.
class LayerAttention {
 public:
  virtual ~LayerAttention() = default;
  virtual at::Tensor attend(int64_t layer, bool layer_selects, const at::Tensor& q, const at::Tensor& k,
                            const at::Tensor& v, double scale) = 0;
  // The fused decode path (inference only): when takes_fused_qkv(activation dtype, Hq, D) the model rotates the
  // step's q and k heads (RoPE) and stores k and v at step_kv_rows(layer) itself, in the epilogue of the q/k/v
  // projection where it can (skinny_rope_linear) or with rope_append, then calls attend_rotated: q1 [B, Hq, D]
  // post-RoPE -> [B, Hq, D] in q1's dtype, the step's K/V already stored. step_kv_rows checks the step (it is
  // called before anything is written). The defaults: takes_fused_qkv() false, the other two throw.
  virtual bool takes_fused_qkv(at::ScalarType, int64_t /*q_heads*/, int64_t /*head_dim*/) const { return false; }
  virtual StepKvRows step_kv_rows(int64_t layer);
  virtual at::Tensor attend_rotated(int64_t layer, bool layer_selects, const at::Tensor& q1, double scale);
};

// One layer's projections concatenated for the fused decode path: qkv [(Hq + 2 Hkv) D, H] = [q; k; v] (and its
// bias [(Hq + 2 Hkv) D] with attention_bias), gate_up [2 I, H] = [gate; up].
struct FusedProjections {
  at::Tensor qkv, qkv_bias, gate_up;
};

class LlamaModel {
 public:
  // Fresh weights: normal(0, init_std) for projections and embeddings, ones for the norms. draw_on_device: the
  // normal draws run on `device` with its default generator reseeded with `seed` (seconds instead of minutes for
  // a 1B model on a GPU; other values than the host draw, and the device's global generator is reseeded).
  static LlamaModel create(const ModelOptions& options, uint64_t seed, at::Device device, bool draw_on_device = false);
  // Weights by Hugging Face name; checks every name and shape (lm_head may be absent when tied) and converts to
  // the options' dtype on `device`. Throws gsa::Error naming the first missing, unexpected or misshapen tensor.
  static LlamaModel from_tensors(const ModelOptions& options, const TensorMap& tensors, at::Device device);

  const ModelOptions& options() const { return options_; }
  at::Device device() const { return device_; }
  const TensorMap& parameters() const { return params_; }
  std::vector<at::Tensor> parameter_list() const;
  void set_requires_grad(bool requires_grad);
  int64_t num_parameters() const;

  // Grows the vocabulary to new_vocab_size; the new embedding and lm_head rows are the mean of the old ones
  // (how gist tokens are added to a pretrained model).
  void extend_vocab(int64_t new_vocab_size);

  KvCache make_cache(int64_t batch, int64_t capacity) const;

  // tokens, rope_pos: [B, Tq] int64 at the plan's query positions -> logits [B, Tq, V] fp32, or [B, 1, V] of the
  // last query index only with last_position_only (a prefill: the other positions' logits would take Tq x V floats,
  // 64 GiB at 128K tokens with a Llama-3 vocabulary).
  at::Tensor forward(const at::Tensor& tokens, const at::Tensor& rope_pos, const AttentionPlan& plan,
                     const AttentionOptions& attention, bool selective, KvCache* cache = nullptr,
                     bool last_position_only = false) const;
  // The same with the attention supplied per layer; tokens, rope_pos: [B, Tq] the forward's own tokens. With
  // checkpoint_layers each decoder layer is recomputed in backward (activation_checkpoint.h): layer_attention
  // and what it refers to must then outlive the backward pass.
  at::Tensor forward(const at::Tensor& tokens, const at::Tensor& rope_pos, LayerAttention& layer_attention,
                     const AttentionOptions& attention, bool selective, bool checkpoint_layers = false,
                     bool last_position_only = false) const;
  // The same forward cut before the LM head: the final-normed hidden states [B, Tq, H] in the model dtype, and
  // the head on any [.., H] of them -> fp32 logits [.., V]; forward() == head_logits(forward_hidden()). A loss
  // over a long sequence applies the head to a chunk of positions at a time (runtime/chunked_loss.h).
  at::Tensor forward_hidden(const at::Tensor& tokens, const at::Tensor& rope_pos, LayerAttention& layer_attention,
                            const AttentionOptions& attention, bool selective, bool checkpoint_layers = false) const;
  at::Tensor head_logits(const at::Tensor& hidden) const;
  // The LM head's [V, H] weight (the embedding's with tied embeddings): head_logits(h) = (h W^T) in fp32.
  const at::Tensor& head_weight() const;
  // The fused decode path's concatenated weights of `layer`, built on first use (memory: the q, k, v, gate and
  // up weights once more, 1.2 GiB for Llama-3.2-1B in bf16) and copied again in place when a source weight's
  // storage or version changed (a training step), so a captured decode graph keeps reading valid memory. The
  // first use must not be inside a CUDA graph capture (the decode graph's eager warm-up step comes first).
  const FusedProjections& fused_projections(int64_t layer) const;
  // rope_inv_freq(options, device), computed once per device.
  at::Tensor inv_freq_on(at::Device device) const;

 private:
  const at::Tensor& param(const std::string& name) const;
  at::Tensor layer_forward(int64_t layer, const at::Tensor& x, const RopeTables& rope,
                           LayerAttention& layer_attention, bool layer_selects) const;
  // Every decoder layer of one decode step through the fused path (LayerAttention::step_kv_rows and
  // attend_rotated, decode_step_ops.h, skinny_gemm.h) and the final norm: embedded [B, 1, H] -> [B, 1, H]. A
  // layer's MLP output is added to the residual by the next layer's norm (one kernel for the add, that norm and,
  // where it runs, the q/k/v GEMM), the last one by the final norm (add_rms_norm). The final norm stays apart from
  // the LM head: fused, each of the head GEMM's ~2,000 CTAs (8 waves) would repeat the norm's prologue.
  at::Tensor fused_decode_layers(const at::Tensor& embedded, const RopeTables& rope, LayerAttention& layer_attention,
                                 const AttentionOptions& attention, bool selective) const;
  // Embedding, every decoder layer and the final norm: [B, Tq, H], or [B, 1, H] with last_position_only (the norm
  // of that position alone).
  at::Tensor final_hidden(const at::Tensor& tokens, const at::Tensor& rope_pos, LayerAttention& layer_attention,
                          const AttentionOptions& attention, bool selective, bool checkpoint_layers,
                          bool last_position_only) const;

  ModelOptions options_;
  at::Device device_{at::kCPU};
  TensorMap params_;
  struct FusedCache;
  std::shared_ptr<FusedCache> fused_;  // shared by copies of the model, which share its parameter tensors
};

// Expected parameter shapes by Hugging Face name.
std::vector<std::pair<std::string, std::vector<int64_t>>> llama_parameter_shapes(const ModelOptions& options);
// Throws gsa::Error naming the first missing, misshapen or unexpected tensor of `tensors` for `options`
// (lm_head.weight may be present when the embeddings are tied); `source` starts each message.
void check_llama_tensors(const ModelOptions& options, const TensorMap& tensors, const std::string& source);

at::ScalarType to_scalar_type(DType dtype);

}  // namespace gsa
