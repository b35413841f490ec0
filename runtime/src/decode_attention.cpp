#include "gsa/runtime/decode_attention.h"

#include "gsa/runtime/decode_graph.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/kernel_choice.h"
#include "gsa/runtime/selection.h"
#include "gsa/runtime/sparse_decode.h"

namespace gsa {

bool decode_step_capturable(const LlamaModel& model, const AttentionOptions& attention) {
  if (!DecodeStepGraph::usable(model.device(), attention)) return false;
  const ModelOptions& o = model.options();
  const at::ScalarType dtype = to_scalar_type(o.dtype);
  return use_kernel_backend(attention.backend, /*on_cuda=*/true,
                            sparse_decode_unsupported(dtype, o.num_heads, o.head_dim, dtype, o.num_kv_heads),
                            "decode step");
}

DecodeLayerAttention::DecodeLayerAttention(const DecodePlan& plan, const AttentionOptions& options,
                                           DecodeCaches& caches)
    : plan_(plan), options_(options), caches_(caches) {}

DecodeLayerAttention::DecodeLayerAttention(const DecodePlan& plan, const AttentionOptions& options, KvCache& cache)
    : plan_(plan), options_(options), owned_(std::make_unique<DecodeCaches>(cache)), caches_(*owned_) {}

bool DecodeLayerAttention::use_kernels(const at::Tensor& q, int64_t layer) const {
  const at::Tensor& like = caches_.sample(layer);
  return use_kernel_backend(options_.backend, q.is_cuda(),
                            sparse_decode_unsupported(q, like.scalar_type(), like.size(1)),
                            str_cat("decode q ", q.sizes(), " ", q.scalar_type()));
}

at::Tensor DecodeLayerAttention::key_rows(int64_t layer, bool layer_selects, const at::Tensor& q) {
  const int64_t B = plan_.batch(), hkv = caches_.sample(layer).size(1);
  at::Tensor rows = plan_.prompt_rows(layer_selects).unsqueeze(1).expand({B, hkv, -1});  // [B, Hkv, R]
  const SelectionPlan& sel = plan_.selection();
  if (!layer_selects || sel.count == 0) return rows.contiguous();
  const at::Tensor& covered = plan_.selective_covered();
  const bool kernels = use_kernels(q, layer);
  if (kernels && sel.count == B) {
    // Every sequence selects (its one query, in batch order: decode plans list one query per row), so the
    // kernels write the selected rows straight after the prompt rows of one [B, Hkv, R + S] list. The prompt rows
    // are the same in every selective layer of the step: copied once, at the first; each layer's selection then
    // overwrites the S slots after them (the layer before has read them: its decode comes first in stream order).
    const int64_t R = rows.size(2), S = selection_key_slots(q.size(1), hkv, sel, plan_.gist(), options_.selection);
    if (!selective_rows_.defined() || selective_rows_.sizes() != at::IntArrayRef({B, hkv, R + S})) {
      selective_rows_ = at::empty({B, hkv, R + S}, rows.options());
      selective_rows_.narrow(2, 0, R).copy_(rows);
    }
    select_chunks_rows(q, caches_.rows(layer, false), hkv, sel, plan_.gist(), options_.selection, covered,
                       selective_rows_.narrow(2, R, S));
    return selective_rows_;
  }
  const at::Tensor q_sel = q.index_select(0, sel.row);  // [Ns, Hq, D]
  const ChunkSelection chosen =
      kernels
          ? select_chunks_rows(q_sel, caches_.rows(layer, false), hkv, sel, plan_.gist(), options_.selection, covered)
          : select_chunks(q_sel, caches_.stacked(layer, false), sel, plan_.gist(), options_.selection, at::Tensor(),
                          AttentionBackend::kReference, covered);
  const at::Tensor picked = chosen.key_pos.to(at::kInt);  // [Ns, Hkv, S]
  const at::Tensor extra = at::full({B, hkv, picked.size(2)}, -1, picked.options()).index_copy(0, sel.row, picked);
  return at::cat({rows, extra}, 2);
}

void DecodeLayerAttention::check_step(int64_t queries) const {
  const int64_t B = plan_.batch();
  GSA_CHECK(queries == B, "decode attention takes one query per sequence: ", queries, " queries for ", B,
            " sequences");
  GSA_CHECK(caches_.batch() == B, "decode attention: ", caches_.batch(), " caches for ", B, " sequences");
  for (int64_t b = 0; b < B; ++b) {
    GSA_CHECK(plan_.position(b) < caches_.capacity(b), "KV cache of sequence ", b, " [", caches_.capacity(b),
              " positions] cannot hold position ", plan_.position(b));
  }
}

at::Tensor DecodeLayerAttention::attend_stored(int64_t layer, bool layer_selects, const at::Tensor& q1,
                                               double scale) {
  const at::Tensor rows = key_rows(layer, layer_selects, q1);
  const int64_t hkv = caches_.sample(layer).size(1);
  // The kernels round their output to q's dtype themselves (the same bits as .to(), one launch fewer); .to() is
  // then a no-op, and converts the reference backend's fp32 output.
  const DecodeAttention out =
      use_kernels(q1, layer) ? sparse_decode_rows(q1, caches_.rows(layer, false), caches_.rows(layer, true), hkv, rows,
                                                  scale, 0, &plan_.generated(), q1.scalar_type())
                             : sparse_decode_reference(q1, caches_.stacked(layer, false), caches_.stacked(layer, true),
                                                       rows, scale, &plan_.generated());
  return out.out.to(q1.scalar_type());  // [B, Hq, D]
}

at::Tensor DecodeLayerAttention::attend(int64_t layer, bool layer_selects, const at::Tensor& q, const at::Tensor& k,
                                        const at::Tensor& v, double scale) {
  GSA_CHECK(q.dim() == 4 && q.size(2) == 1 && k.size(2) == 1, "decode attention takes one query per sequence: q ",
            q.sizes());
  check_step(q.size(0));
  caches_.append(layer, plan_.positions(), k.select(2, 0), v.select(2, 0));
  return attend_stored(layer, layer_selects, q.select(2, 0), scale).unsqueeze(2);
}

bool decode_takes_fused_qkv(const DecodeCaches& caches, const AttentionOptions& options, at::ScalarType dtype,
                            int64_t q_heads, int64_t head_dim) {
  const at::Tensor& like = caches.sample(0);
  return dtype == like.scalar_type() &&
         use_kernel_backend(options.backend, like.is_cuda(),
                            sparse_decode_unsupported(dtype, q_heads, head_dim, dtype, like.size(1)), "decode step");
}

bool DecodeLayerAttention::takes_fused_qkv(at::ScalarType dtype, int64_t q_heads, int64_t head_dim) const {
  return decode_takes_fused_qkv(caches_, options_, dtype, q_heads, head_dim);
}

StepKvRows DecodeLayerAttention::step_kv_rows(int64_t layer) {
  check_step(plan_.positions().size(0));
  return {plan_.positions(), caches_.rows(layer, false), caches_.rows(layer, true)};
}

at::Tensor DecodeLayerAttention::attend_rotated(int64_t layer, bool layer_selects, const at::Tensor& q1,
                                                double scale) {
  check_step(q1.size(0));
  return attend_stored(layer, layer_selects, q1, scale);  // [B, Hq, D]
}

}  // namespace gsa
