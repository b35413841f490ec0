#include "gsa/runtime/sdpa_attention.h"

#include "gsa/runtime/error.h"

namespace gsa {

at::Tensor CausalSdpaAttention::attend(int64_t layer, bool layer_selects, const at::Tensor& q, const at::Tensor& k,
                                       const at::Tensor& v, double scale) {
  GSA_CHECK(!layer_selects, "dense causal attention (SDPA) was asked to select chunks in layer ", layer,
            ": run it with selection off");
  GSA_CHECK(q.dim() == 4 && k.sizes() == v.sizes() && q.size(2) == k.size(2) && q.size(1) % k.size(1) == 0,
            "SDPA attention: q ", q.sizes(), ", k ", k.sizes(), ", v ", v.sizes(),
            " must be [B, Hq, T, D] and [B, Hkv, T, D] with Hkv dividing Hq");
  return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0, /*is_causal=*/true, scale,
                                          /*enable_gqa=*/q.size(1) != k.size(1));
}

}  // namespace gsa
