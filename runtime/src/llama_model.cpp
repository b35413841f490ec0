#include "gsa/runtime/llama_model.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <set>
#include <tuple>
#include <vector>

#include "gsa/runtime/activation_checkpoint.h"
#include "gsa/runtime/attention.h"
#include "gsa/runtime/decode_graph.h"
#include "gsa/runtime/decode_step_ops.h"
#include "gsa/runtime/env_knob.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/rope.h"
#include "gsa/runtime/skinny_gemm.h"

namespace gsa {
namespace {

std::string layer_name(int64_t layer, const std::string& rest) { return str_cat("model.layers.", layer, ".", rest); }

// RMSNorm in fp32, scaled by the weight: LibTorch's rms_norm (one fused kernel on CUDA instead of eight), which
// rounds once, after the weight (transformers' LlamaRMSNorm rounds before it: at most one rounding apart).
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  return at::rms_norm(x, {x.size(-1)}, weight, eps);
}

// x [.., in] @ weight[out, in]^T -> [.., out]
at::Tensor project(const at::Tensor& x, const at::Tensor& weight) { return at::matmul(x, weight.t()); }

// x [B, K] times weight [N, K]^T (+ bias [N]) -> [B, N] for the decode step: the skinny GEMM kernel (one pass over
// the weight at close to memory bandwidth, where cuBLAS moves 1.4-3.4 TB/s for one row) while B is small enough.
// The weight is a parameter (constant_weight: streamed while the kernel before finishes).
at::Tensor decode_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias = at::Tensor()) {
  if (skinny_linear_supported(x.scalar_type(), x.size(0), x.size(1))) {
    return skinny_linear(x, weight, bias.defined() ? std::optional<at::Tensor>(bias) : std::nullopt,
                         SkinnyEpilogue::kNone, /*float_out=*/false, /*constant_weight=*/true);
  }
  return bias.defined() ? at::addmm(bias, x, weight.t()) : at::mm(x, weight.t());
}

// GSA_SKINNY_ROPE (read once): RoPE and the K/V cache append in the q/k/v GEMM's epilogue (skinny_rope_linear),
// a launch fewer a layer, bit for bit the GEMM followed by rope_append. On (unset or 1) on every device; 0 keeps the
// separate launches (the A/B switch). On an H200 the 1B model's 128K token took ~0.01 ms less with it
// (docs/PERFORMANCE.md, twenty-eighth session: three alternations in one call; the twenty-seventh's one pair was
// within its spread).
bool fuse_rope_into_gemm() {
  static const bool on = env_integer("GSA_SKINNY_ROPE", 1, 0) != 0;
  return on;
}

// {round(x + add), RMSNorm(that) * norm_weight} (add undefined: {x, RMSNorm(x) * norm_weight}): x, add [B, H].
std::pair<at::Tensor, at::Tensor> add_and_norm(const at::Tensor& x, const at::Tensor& add,
                                               const at::Tensor& norm_weight, double eps) {
  if (add.defined()) return add_rms_norm(x, add, norm_weight, eps);
  return {x, rms_norm(x, norm_weight, eps)};
}

// {round(x + add), the projection of its RMSNorm}: x and add [B, H] (add undefined: {x, projection of
// RMSNorm(x)}), norm_weight [H], weight [N, H] (kSiluMul: [gate; up]), bias [N] or undefined -> [B, N] (kSiluMul:
// [B, N / 2]): the norm (add_rms_norm, or rms_norm without add), then the projection (skinny_linear where it runs,
// else LibTorch). (The norm inside the GEMM's prologue was 0.1-0.33 ms a step slower each of the three times it
// was tried: docs/PERFORMANCE.md, thirteenth, fourteenth and twenty-seventh sessions.)
std::pair<at::Tensor, at::Tensor> normed_projection(const at::Tensor& x, const at::Tensor& add,
                                                    const at::Tensor& norm_weight, double eps,
                                                    const at::Tensor& weight, const at::Tensor& bias,
                                                    SkinnyEpilogue epilogue) {
  const int64_t rows = x.size(0), hidden = x.size(1);
  const std::optional<at::Tensor> bias_arg = bias.defined() ? std::optional<at::Tensor>(bias) : std::nullopt;
  const auto [sum, normed] = add_and_norm(x, add, norm_weight, eps);
  if (epilogue == SkinnyEpilogue::kNone) return {sum, decode_linear(normed, weight, bias)};
  const at::Tensor gated = skinny_linear_supported(normed.scalar_type(), rows, hidden)
                               ? skinny_linear(normed, weight, bias_arg, epilogue, false, /*constant_weight=*/true)
                               : silu_mul(at::mm(normed, weight.t()));
  return {sum, gated};
}

// A decode layer's input norm and q/k/v projection with RoPE and the step's K/V store: x, add [B, H] (add: the
// previous layer's MLP output, or undefined) -> {round(x + add), q1 [B, Hq, D] post-RoPE}, k and v written at
// kv.positions (nowhere without). qkv_weight [(Hq + 2 Hkv) D, H] (q, k, v heads stacked), qkv_bias or undefined.
// The norm, then one skinny GEMM with the RoPE epilogue where that fusion runs, else the projection and the RoPE
// through rope_append (apply_rope on q alone without positions: the same bits).
std::pair<at::Tensor, at::Tensor> normed_rope_projection(const at::Tensor& x, const at::Tensor& add,
                                                         const at::Tensor& norm_weight, double eps,
                                                         const at::Tensor& qkv_weight, const at::Tensor& qkv_bias,
                                                         const RopeTables& rope, const StepKvRows& kv, int64_t hq,
                                                         int64_t hkv) {
  const int64_t B = x.size(0), H = x.size(1), D = qkv_weight.size(0) / (hq + 2 * hkv);
  const auto [sum, normed] = add_and_norm(x, add, norm_weight, eps);  // [B, H] each
  if (fuse_rope_into_gemm() && skinny_rope_linear_supported(x.scalar_type(), B, H, D)) {
    const SkinnyRopeTarget target{hq, hkv, rope.cos, rope.sin_rotated, kv};
    return {sum, skinny_rope_linear(normed, qkv_weight, qkv_bias, target, /*constant_weight=*/true)};
  }
  const at::Tensor qkv = decode_linear(normed, qkv_weight, qkv_bias);  // [B, (Hq + 2 Hkv) D]
  if (!kv.positions.defined()) {
    return {sum, apply_rope(qkv.narrow(-1, 0, hq * D).reshape({B, hq, 1, D}), rope).select(2, 0)};
  }
  return {sum, rope_append(qkv, rope.cos.reshape({B, D}), rope.sin_rotated.reshape({B, D}), hq, hkv, kv.positions,
                           kv.k, kv.v)};
}

// Position-wise work (norms, projections, the MLP) of a long forward runs on slices of at most this many
// positions when no gradient is recorded, so a 1M-token prefill never holds its [B, Tq, intermediate] MLP
// temporaries at once (16 GiB each with the Llama-3.2-1B shapes). Shorter forwards, and every forward that
// records a gradient, run in one piece; each position's result is the same either way (fn is position-wise).
constexpr int64_t kInferencePositionChunk = 32768;

// fn applied to x [B, Tq, ...] slice by slice along Tq (see kInferencePositionChunk) -> fn(x).
template <typename Fn>
at::Tensor by_position_chunks(const at::Tensor& x, Fn fn) {
  const int64_t tq = x.size(1);
  if (at::GradMode::is_enabled() || tq <= kInferencePositionChunk) return fn(x);
  std::vector<at::Tensor> parts;
  for (int64_t begin = 0; begin < tq; begin += kInferencePositionChunk) {
    parts.push_back(fn(x.narrow(1, begin, std::min(kInferencePositionChunk, tq - begin))));
  }
  return at::cat(parts, 1);
}

// Attention on one device over the plan's keys: the forward's own K/V, or the KV cache they are written into.
class PlannedAttention : public LayerAttention {
 public:
  PlannedAttention(const AttentionPlan& plan, const SelectionOptions& selection, KvCache* cache)
      : plan_(plan), selection_(selection), cache_(cache) {}

  at::Tensor attend(int64_t layer, bool layer_selects, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                    double scale) override {
    at::Tensor keys = k, values = v;
    if (cache_ != nullptr) {
      cache_->k[layer].narrow(2, plan_.q_begin, k.size(2)).copy_(k);
      cache_->v[layer].narrow(2, plan_.q_begin, v.size(2)).copy_(v);
      keys = cache_->k[layer].narrow(2, 0, plan_.num_keys);
      values = cache_->v[layer].narrow(2, 0, plan_.num_keys);
    }
    return gsa_attention(q, keys, values, plan_, layer_selects, selection_, scale);
  }

 private:
  const AttentionPlan& plan_;
  const SelectionOptions& selection_;
  KvCache* cache_;
};

}  // namespace

StepKvRows LayerAttention::step_kv_rows(int64_t) {
  GSA_CHECK(false, "this layer attention does not take the fused decode path");
  return {};
}

at::Tensor LayerAttention::attend_rotated(int64_t, bool, const at::Tensor&, double) {
  GSA_CHECK(false, "this layer attention does not take the fused decode path");
  return at::Tensor();
}

struct LlamaModel::FusedCache {
  std::mutex mutex;
  std::vector<FusedProjections> layers;  // [num_layers]; qkv undefined until built
  // Per layer, (storage, version) of each source weight when it was last copied.
  std::vector<std::vector<std::pair<const void*, int64_t>>> sources;
  // RoPE's inverse frequencies [D/2] per device, computed once: a decode step would otherwise spend about a dozen
  // small kernels on them (the Llama-3 scaling's pow, where and compares).
  std::vector<std::pair<at::Device, at::Tensor>> inv_freq;
};

at::ScalarType to_scalar_type(DType dtype) { return dtype == DType::kBFloat16 ? at::kBFloat16 : at::kFloat; }

std::vector<std::pair<std::string, std::vector<int64_t>>> llama_parameter_shapes(const ModelOptions& o) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
  shapes.push_back({"model.embed_tokens.weight", {o.vocab_size, o.hidden_size}});
  for (int64_t i = 0; i < o.num_layers; ++i) {
    shapes.push_back({layer_name(i, "self_attn.q_proj.weight"), {o.num_heads * o.head_dim, o.hidden_size}});
    shapes.push_back({layer_name(i, "self_attn.k_proj.weight"), {o.num_kv_heads * o.head_dim, o.hidden_size}});
    shapes.push_back({layer_name(i, "self_attn.v_proj.weight"), {o.num_kv_heads * o.head_dim, o.hidden_size}});
    if (o.attention_bias) {
      shapes.push_back({layer_name(i, "self_attn.q_proj.bias"), {o.num_heads * o.head_dim}});
      shapes.push_back({layer_name(i, "self_attn.k_proj.bias"), {o.num_kv_heads * o.head_dim}});
      shapes.push_back({layer_name(i, "self_attn.v_proj.bias"), {o.num_kv_heads * o.head_dim}});
    }
    shapes.push_back({layer_name(i, "self_attn.o_proj.weight"), {o.hidden_size, o.num_heads * o.head_dim}});
    shapes.push_back({layer_name(i, "mlp.gate_proj.weight"), {o.intermediate_size, o.hidden_size}});
    shapes.push_back({layer_name(i, "mlp.up_proj.weight"), {o.intermediate_size, o.hidden_size}});
    shapes.push_back({layer_name(i, "mlp.down_proj.weight"), {o.hidden_size, o.intermediate_size}});
    shapes.push_back({layer_name(i, "input_layernorm.weight"), {o.hidden_size}});
    shapes.push_back({layer_name(i, "post_attention_layernorm.weight"), {o.hidden_size}});
  }
  shapes.push_back({"model.norm.weight", {o.hidden_size}});
  if (!o.tie_embeddings) shapes.push_back({"lm_head.weight", {o.vocab_size, o.hidden_size}});
  return shapes;
}

LlamaModel LlamaModel::create(const ModelOptions& options, uint64_t seed, at::Device device, bool draw_on_device) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  const at::Device draw_device = draw_on_device ? device : at::Device(at::kCPU);
  if (draw_on_device) {
    gen = at::globalContext().defaultGenerator(device);
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(seed);
  }
  const auto fp32 = at::TensorOptions().dtype(at::kFloat).device(draw_device);
  TensorMap tensors;
  for (const auto& [name, shape] : llama_parameter_shapes(options)) {
    const bool is_norm = name.size() > 11 && name.compare(name.size() - 11, 11, "norm.weight") == 0;
    const bool is_bias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    tensors[name] = is_norm   ? at::ones(shape, fp32)
                    : is_bias ? at::zeros(shape, fp32)
                              : at::normal(0.0, options.init_std, shape, gen, fp32);
  }
  return from_tensors(options, tensors, device);
}

LlamaModel LlamaModel::from_tensors(const ModelOptions& options, const TensorMap& tensors, at::Device device) {
  GSA_CHECK(options.num_heads % options.num_kv_heads == 0, "num_heads ", options.num_heads,
            " is not a multiple of num_kv_heads ", options.num_kv_heads);
  check_llama_tensors(options, tensors, "");
  LlamaModel model;
  model.options_ = options;
  model.device_ = device;
  model.fused_ = std::make_shared<FusedCache>();
  for (const auto& [name, shape] : llama_parameter_shapes(options)) {
    model.params_[name] = tensors.at(name).detach().to(device, to_scalar_type(options.dtype)).contiguous();
  }
  return model;
}

void check_llama_tensors(const ModelOptions& options, const TensorMap& tensors, const std::string& source) {
  const std::string where = source.empty() ? "" : source + ": ";
  std::set<std::string> expected;
  for (const auto& [name, shape] : llama_parameter_shapes(options)) {
    expected.insert(name);
    auto it = tensors.find(name);
    GSA_CHECK(it != tensors.end(), where, "missing tensor '", name, "' (expected shape ", at::IntArrayRef(shape),
              ")");
    GSA_CHECK(it->second.sizes() == at::IntArrayRef(shape), where, "tensor '", name, "' has shape ",
              it->second.sizes(), ", the config needs ", at::IntArrayRef(shape));
  }
  for (const auto& [name, t] : tensors) {
    const bool tied_head = options.tie_embeddings && name == "lm_head.weight";
    GSA_CHECK(expected.count(name) || tied_head, where, "unexpected tensor '", name, "' for this config");
  }
}

std::vector<at::Tensor> LlamaModel::parameter_list() const {
  std::vector<at::Tensor> out;
  for (const auto& [name, t] : params_) out.push_back(t);
  return out;
}

void LlamaModel::set_requires_grad(bool requires_grad) {
  for (auto& [name, t] : params_) t.requires_grad_(requires_grad);
}

int64_t LlamaModel::num_parameters() const {
  int64_t n = 0;
  for (const auto& [name, t] : params_) n += t.numel();
  return n;
}

void LlamaModel::extend_vocab(int64_t new_vocab_size) {
  GSA_CHECK(new_vocab_size >= options_.vocab_size, "cannot shrink the vocabulary from ", options_.vocab_size, " to ",
            new_vocab_size);
  const int64_t extra = new_vocab_size - options_.vocab_size;
  if (extra == 0) return;
  at::NoGradGuard no_grad;
  for (const char* name : {"model.embed_tokens.weight", "lm_head.weight"}) {
    auto it = params_.find(name);
    if (it == params_.end()) continue;
    at::Tensor old = it->second;
    at::Tensor mean = old.to(at::kFloat).mean(0, /*keepdim=*/true).to(old.scalar_type());
    it->second = at::cat({old, mean.expand({extra, old.size(1)})}, 0).contiguous();
  }
  options_.vocab_size = new_vocab_size;
}

KvCache LlamaModel::make_cache(int64_t batch, int64_t capacity) const {
  KvCache cache;
  auto opts = at::TensorOptions().dtype(to_scalar_type(options_.dtype)).device(device_);
  for (int64_t i = 0; i < options_.num_layers; ++i) {
    cache.k.push_back(at::zeros({batch, options_.num_kv_heads, capacity, options_.head_dim}, opts));
    cache.v.push_back(at::zeros({batch, options_.num_kv_heads, capacity, options_.head_dim}, opts));
  }
  return cache;
}

const at::Tensor& LlamaModel::param(const std::string& name) const {
  auto it = params_.find(name);
  GSA_CHECK(it != params_.end(), "model has no parameter '", name, "'");
  return it->second;
}

at::Tensor LlamaModel::layer_forward(int64_t layer, const at::Tensor& x, const RopeTables& rope,
                                     LayerAttention& layer_attention, bool layer_selects) const {
  const ModelOptions& o = options_;
  const int64_t b = x.size(0), tq = x.size(1), d = o.head_dim;
  auto p = [&](const std::string& rest) -> const at::Tensor& { return param(layer_name(layer, rest)); };
  at::Tensor q, k, v;
  {  // the normed input dies here, before the attention's own buffers are allocated (long prefill memory)
    const at::Tensor h = by_position_chunks(
        x, [&](const at::Tensor& xs) { return rms_norm(xs, p("input_layernorm.weight"), o.rms_norm_eps); });
    auto projection = [&](const char* proj, int64_t heads) {
      at::Tensor y = project(h, p(str_cat("self_attn.", proj, ".weight")));                   // [B, Tq, heads*D]
      if (o.attention_bias) y = y + p(str_cat("self_attn.", proj, ".bias"));
      return y.view({b, tq, heads, d}).transpose(1, 2);                                        // [B, heads, Tq, D]
    };
    q = apply_rope(projection("q_proj", o.num_heads), rope);                                   // [B, Hq, Tq, D]
    k = apply_rope(projection("k_proj", o.num_kv_heads), rope);                                // [B, Hkv, Tq, D]
    v = projection("v_proj", o.num_kv_heads);                                                  // [B, Hkv, Tq, D]
  }

  at::Tensor attn = layer_attention.attend(layer, layer_selects, q, k, v, 1.0 / std::sqrt(double(d)));
  q.reset();
  k.reset();
  v.reset();
  attn = attn.transpose(1, 2).reshape({b, tq, o.num_heads * d});
  at::Tensor out = x + project(attn, p("self_attn.o_proj.weight"));
  attn.reset();

  return by_position_chunks(out, [&](const at::Tensor& outs) {
    const at::Tensor hs = rms_norm(outs, p("post_attention_layernorm.weight"), o.rms_norm_eps);
    return outs + project(at::silu(project(hs, p("mlp.gate_proj.weight"))) * project(hs, p("mlp.up_proj.weight")),
                          p("mlp.down_proj.weight"));                                         // [B, Tq, H]
  });
}

at::Tensor LlamaModel::inv_freq_on(at::Device device) const {
  if (fused_ == nullptr) return rope_inv_freq(options_, device);
  std::lock_guard<std::mutex> lock(fused_->mutex);
  for (const auto& [where, inv_freq] : fused_->inv_freq) {
    if (where == device) return inv_freq;
  }
  at::NoGradGuard no_grad;
  fused_->inv_freq.emplace_back(device, rope_inv_freq(options_, device));
  return fused_->inv_freq.back().second;
}

const FusedProjections& LlamaModel::fused_projections(int64_t layer) const {
  GSA_CHECK(fused_ != nullptr && layer >= 0 && layer < options_.num_layers, "no fused projections for layer ", layer);
  auto p = [&](const std::string& rest) -> const at::Tensor& { return param(layer_name(layer, rest)); };
  std::vector<at::Tensor> qkv = {p("self_attn.q_proj.weight"), p("self_attn.k_proj.weight"),
                                 p("self_attn.v_proj.weight")};
  std::vector<at::Tensor> gate_up = {p("mlp.gate_proj.weight"), p("mlp.up_proj.weight")};
  std::vector<at::Tensor> bias;
  if (options_.attention_bias) {
    bias = {p("self_attn.q_proj.bias"), p("self_attn.k_proj.bias"), p("self_attn.v_proj.bias")};
  }
  std::vector<std::pair<const void*, int64_t>> now;
  for (const auto* list : {&qkv, &gate_up, &bias}) {
    for (const at::Tensor& t : *list) now.emplace_back(t.data_ptr(), t._version());
  }
  std::lock_guard<std::mutex> lock(fused_->mutex);
  if (fused_->layers.empty()) {
    fused_->layers.resize(options_.num_layers);
    fused_->sources.resize(options_.num_layers);
  }
  FusedProjections& f = fused_->layers[layer];
  if (fused_->sources[layer] == now) return f;
  at::NoGradGuard no_grad;
  if (!f.qkv.defined()) {
    GSA_CHECK(!DecodeStepGraph::capturing(), "the fused projections of layer ", layer,
              " must be built before a CUDA graph capture (run one step eagerly first)");
    f.qkv = at::cat(qkv, 0);
    f.gate_up = at::cat(gate_up, 0);
    if (!bias.empty()) f.qkv_bias = at::cat(bias, 0);
  } else {  // in place: a captured decode graph reads these buffers
    at::cat_out(f.qkv, qkv, 0);
    at::cat_out(f.gate_up, gate_up, 0);
    if (!bias.empty()) at::cat_out(f.qkv_bias, bias, 0);
  }
  fused_->sources[layer] = std::move(now);
  return f;
}

at::Tensor LlamaModel::fused_decode_layers(const at::Tensor& embedded, const RopeTables& rope,
                                           LayerAttention& layer_attention, const AttentionOptions& attention,
                                           bool selective) const {
  const ModelOptions& o = options_;
  const int64_t b = embedded.size(0), hidden = embedded.size(2), d = o.head_dim;
  at::Tensor x = embedded.view({b, hidden});  // the residual stream [B, H]
  at::Tensor mlp_out;                         // the previous layer's MLP output [B, H], not yet added to x
  for (int64_t layer = 0; layer < o.num_layers; ++layer) {
    auto p = [&](const std::string& rest) -> const at::Tensor& { return param(layer_name(layer, rest)); };
    const FusedProjections& f = fused_projections(layer);
    const StepKvRows kv_rows = layer_attention.step_kv_rows(layer);  // checks the step before k and v are stored
    at::Tensor q1;                                                   // [B, Hq, D] post-RoPE
    std::tie(x, q1) = normed_rope_projection(x, mlp_out, p("input_layernorm.weight"), o.rms_norm_eps, f.qkv,
                                             f.qkv_bias, rope, kv_rows, o.num_heads, o.num_kv_heads);
    const bool layer_selects = selective && layer >= attention.selection.first_selective_layer;
    const at::Tensor attn = layer_attention.attend_rotated(layer, layer_selects, q1, 1.0 / std::sqrt(double(d)));
    const at::Tensor o_proj = decode_linear(attn.reshape({b, o.num_heads * d}), p("self_attn.o_proj.weight"));
    at::Tensor gated;  // [B, I]
    std::tie(x, gated) = normed_projection(x, o_proj, p("post_attention_layernorm.weight"), o.rms_norm_eps,
                                           f.gate_up, at::Tensor(), SkinnyEpilogue::kSiluMul);
    mlp_out = decode_linear(gated, p("mlp.down_proj.weight"));                                 // [B, H]
  }
  // The last MLP output's add and the final norm in one kernel.
  return add_and_norm(x, mlp_out, param("model.norm.weight"), o.rms_norm_eps).second.view({b, 1, hidden});
}

at::Tensor LlamaModel::forward(const at::Tensor& tokens, const at::Tensor& rope_pos, const AttentionPlan& plan,
                               const AttentionOptions& attention, bool selective, KvCache* cache,
                               bool last_position_only) const {
  GSA_CHECK(tokens.dim() == 2 && tokens.sizes() == rope_pos.sizes(), "tokens ", tokens.sizes(), " and rope_pos ",
            rope_pos.sizes(), " must both be [B, Tq]");
  GSA_CHECK(tokens.size(1) == plan.num_queries, "forward got ", tokens.size(1), " tokens for ", plan.num_queries,
            " plan queries");
  GSA_CHECK(cache != nullptr || (plan.q_begin == 0 && plan.num_queries == plan.num_keys),
            "a forward without a KV cache must cover every position");
  GSA_CHECK(cache == nullptr || cache->capacity() >= plan.num_keys, "KV cache capacity ", cache ? cache->capacity() : 0,
            " < ", plan.num_keys, " positions");
  PlannedAttention planned(plan, attention.selection, cache);
  return forward(tokens, rope_pos, planned, attention, selective, /*checkpoint_layers=*/false, last_position_only);
}

at::Tensor LlamaModel::forward(const at::Tensor& tokens, const at::Tensor& rope_pos, LayerAttention& layer_attention,
                               const AttentionOptions& attention, bool selective, bool checkpoint_layers,
                               bool last_position_only) const {
  return head_logits(final_hidden(tokens, rope_pos, layer_attention, attention, selective, checkpoint_layers,
                                  last_position_only));                                       // [B, Tq, V]
}

at::Tensor LlamaModel::forward_hidden(const at::Tensor& tokens, const at::Tensor& rope_pos,
                                      LayerAttention& layer_attention, const AttentionOptions& attention,
                                      bool selective, bool checkpoint_layers) const {
  return final_hidden(tokens, rope_pos, layer_attention, attention, selective, checkpoint_layers,
                      /*last_position_only=*/false);                                         // [B, Tq, H]
}

at::Tensor LlamaModel::final_hidden(const at::Tensor& tokens, const at::Tensor& rope_pos,
                                    LayerAttention& layer_attention, const AttentionOptions& attention,
                                    bool selective, bool checkpoint_layers, bool last_position_only) const {
  const at::Tensor& embed = param("model.embed_tokens.weight");
  // (Skipped while a decode step is captured as a CUDA graph: the check synchronises; decode checks on the host.)
  GSA_CHECK(DecodeStepGraph::capturing() || !(tokens < 0).logical_or(tokens >= options_.vocab_size).any().item<bool>(),
            "token ids must be in [0, ", options_.vocab_size, ")");
  at::Tensor x = at::embedding(embed, tokens);                                                // [B, Tq, H]
  const RopeTables rope = make_rope_tables(rope_pos, inv_freq_on(rope_pos.device()), x.scalar_type());
  // One query per sequence, no gradient, and an attention that takes the projections fused: the decode step's
  // fused kernels (about a third of the launches of the general layer).
  const bool fused = tokens.size(1) == 1 && !at::GradMode::is_enabled() && !checkpoint_layers &&
                     layer_attention.takes_fused_qkv(x.scalar_type(), options_.num_heads, options_.head_dim) &&
                     decode_step_ops_supported(x.scalar_type(), options_.head_dim, options_.hidden_size,
                                               options_.intermediate_size);
  if (fused) return fused_decode_layers(x, rope, layer_attention, attention, selective);
  for (int64_t layer = 0; layer < options_.num_layers; ++layer) {
    const bool layer_selects = selective && layer >= attention.selection.first_selective_layer;
    if (checkpoint_layers) {
      x = checkpointed([this, layer, rope, &layer_attention, layer_selects](const at::Tensor& input) {
        return layer_forward(layer, input, rope, layer_attention, layer_selects);
      }, x);
    } else {
      x = layer_forward(layer, x, rope, layer_attention, layer_selects);
    }
  }
  if (last_position_only) x = x.narrow(1, x.size(1) - 1, 1);                                  // [B, 1, H]
  return rms_norm(x, param("model.norm.weight"), options_.rms_norm_eps);                      // [B, Tq, H]
}

const at::Tensor& LlamaModel::head_weight() const {
  return options_.tie_embeddings ? param("model.embed_tokens.weight") : param("lm_head.weight");
}

at::Tensor LlamaModel::head_logits(const at::Tensor& hidden) const {
  // One to a few rows on the GPU without autograd (a decode step, a prompt's last position): the skinny GEMM,
  // writing the rounded logits as fp32 itself.
  const int64_t rows = hidden.numel() / std::max<int64_t>(1, hidden.size(-1));
  if (hidden.is_cuda() && !at::GradMode::is_enabled() &&
      skinny_linear_supported(hidden.scalar_type(), rows, hidden.size(-1))) {
    return skinny_linear(hidden, head_weight(), {}, SkinnyEpilogue::kNone, /*float_out=*/true,
                         /*constant_weight=*/true);  // [.., V]
  }
  return project(hidden, head_weight()).to(at::kFloat);                                        // [.., V]
}

}  // namespace gsa
