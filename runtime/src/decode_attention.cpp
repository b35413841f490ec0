#include "gsa/runtime/decode_attention.h"

#include "gsa/runtime/error.h"
#include "gsa/runtime/selection.h"
#include "gsa/runtime/sparse_decode.h"

namespace gsa {

DecodeLayerAttention::DecodeLayerAttention(const DecodePlan& plan, const AttentionOptions& options, KvCache& cache)
    : plan_(plan), options_(options), cache_(cache) {}

at::Tensor DecodeLayerAttention::key_rows(bool layer_selects, const at::Tensor& q, const at::Tensor& k_cache) const {
  const int64_t B = plan_.batch(), hkv = k_cache.size(1);
  at::Tensor rows = plan_.prompt_rows(layer_selects).unsqueeze(1).expand({B, hkv, -1});  // [B, Hkv, R]
  const SelectionPlan& sel = plan_.selection();
  if (!layer_selects || sel.count == 0) return rows.contiguous();
  const at::Tensor q_sel = q.index_select(0, sel.row);                                    // [Ns, Hq, D]
  const at::Tensor picked = select_chunks(q_sel, k_cache, sel, plan_.gist(), options_.selection, at::Tensor(),
                                         options_.backend, plan_.selective_covered())
                               .key_pos.to(at::kInt);                                     // [Ns, Hkv, S]
  const at::Tensor extra = at::full({B, hkv, picked.size(2)}, -1, picked.options()).index_copy(0, sel.row, picked);
  return at::cat({rows, extra}, 2);
}

at::Tensor DecodeLayerAttention::attend(int64_t layer, bool layer_selects, const at::Tensor& q, const at::Tensor& k,
                                        const at::Tensor& v, double scale) {
  const int64_t B = plan_.batch();
  GSA_CHECK(q.dim() == 4 && q.size(0) == B && q.size(2) == 1 && k.size(2) == 1,
            "decode attention takes one query per sequence: q ", q.sizes(), " for ", B, " sequences");
  GSA_CHECK(layer >= 0 && layer < static_cast<int64_t>(cache_.k.size()), "decode attention: no cache for layer ",
            layer);
  at::Tensor& k_cache = cache_.k[layer];
  at::Tensor& v_cache = cache_.v[layer];
  GSA_CHECK(k_cache.size(0) == B && plan_.max_position() < k_cache.size(2), "KV cache [", k_cache.size(0), " x ",
            k_cache.size(2), " positions] cannot hold position ", plan_.max_position(), " of ", B, " sequences");
  const at::Tensor batch = at::arange(B, plan_.positions().options());
  const auto all = at::indexing::Slice();
  k_cache.index_put_({batch, all, plan_.positions()}, k.select(2, 0));
  v_cache.index_put_({batch, all, plan_.positions()}, v.select(2, 0));

  const at::Tensor q1 = q.select(2, 0);                                                   // [B, Hq, D]
  const at::Tensor rows = key_rows(layer_selects, q1, k_cache);
  const std::string why = sparse_decode_unsupported(q1, k_cache, v_cache);
  bool kernels = false;
  if (options_.backend == AttentionBackend::kKernels) {
    GSA_CHECK(why.empty(), "attention.backend = KERNELS cannot decode q ", q1.sizes(), " ", q1.scalar_type(), ": ",
              why, " (use AUTO or REFERENCE)");
    kernels = true;
  } else if (options_.backend == AttentionBackend::kAuto) {
    kernels = q1.is_cuda() && why.empty();
  }
  const DecodeAttention out = kernels ? sparse_decode(q1, k_cache, v_cache, rows, scale, 0, &plan_.generated())
                                      : sparse_decode_reference(q1, k_cache, v_cache, rows, scale, &plan_.generated());
  return out.out.to(q.scalar_type()).unsqueeze(2);
}

}  // namespace gsa
