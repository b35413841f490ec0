#include "common/dense_llama.h"

#include <cmath>
#include <string>

#include "common/dense_reference.h"

namespace gsa::test {
namespace {

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  return x * at::rsqrt(x.pow(2).mean(-1, true) + eps) * weight;
}

// x [H, T, D] rotated by position t of each row: x * cos + rotate_half(x) * sin.
at::Tensor rope(const at::Tensor& x, double theta) {
  const int64_t t = x.size(1), d = x.size(2);
  at::Tensor inv_freq = at::pow(theta, -at::arange(0, d, 2, at::kDouble) / static_cast<double>(d));  // [D/2]
  at::Tensor angles = at::arange(t, at::kDouble).unsqueeze(1) * inv_freq.unsqueeze(0);              // [T, D/2]
  at::Tensor emb = at::cat({angles, angles}, -1);                                                   // [T, D]
  at::Tensor x1 = x.narrow(-1, 0, d / 2), x2 = x.narrow(-1, d / 2, d / 2);
  return x * emb.cos() + at::cat({-x2, x1}, -1) * emb.sin();
}

}  // namespace

at::Tensor dense_causal_llama_logits(const ModelOptions& o, const TensorMap& params,
                                     const std::vector<int64_t>& tokens) {
  auto p = [&](const std::string& name) { return params.at(name).to(at::kCPU, at::kDouble); };
  const int64_t t = static_cast<int64_t>(tokens.size());
  at::Tensor ids = at::tensor(tokens, at::kLong);
  at::Tensor x = p("model.embed_tokens.weight").index_select(0, ids);  // [T, H]
  at::Tensor keep = at::ones({o.num_kv_heads, t, t}, at::kBool).tril();
  for (int64_t layer = 0; layer < o.num_layers; ++layer) {
    const std::string pre = "model.layers." + std::to_string(layer) + ".";
    at::Tensor h = rms_norm(x, p(pre + "input_layernorm.weight"), o.rms_norm_eps);
    auto heads = [&](const char* proj, int64_t n) {  // [T, n * D] -> [n, T, D]
      return at::matmul(h, p(pre + "self_attn." + proj + ".weight").t()).view({t, n, o.head_dim}).transpose(0, 1);
    };
    at::Tensor q = rope(heads("q_proj", o.num_heads), o.rope_theta);
    at::Tensor k = rope(heads("k_proj", o.num_kv_heads), o.rope_theta);
    at::Tensor v = heads("v_proj", o.num_kv_heads);
    at::Tensor att = dense_attention(q, k, v, keep, 1.0 / std::sqrt(static_cast<double>(o.head_dim)));  // [Hq,T,D]
    x = x + at::matmul(att.transpose(0, 1).reshape({t, -1}), p(pre + "self_attn.o_proj.weight").t());
    h = rms_norm(x, p(pre + "post_attention_layernorm.weight"), o.rms_norm_eps);
    at::Tensor gate = at::matmul(h, p(pre + "mlp.gate_proj.weight").t());
    at::Tensor up = at::matmul(h, p(pre + "mlp.up_proj.weight").t());
    x = x + at::matmul(at::silu(gate) * up, p(pre + "mlp.down_proj.weight").t());
  }
  x = rms_norm(x, p("model.norm.weight"), o.rms_norm_eps);
  return at::matmul(x, p(o.tie_embeddings ? "model.embed_tokens.weight" : "lm_head.weight").t());  // [T, V]
}

}  // namespace gsa::test
