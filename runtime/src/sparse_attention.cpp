#include "gsa/runtime/sparse_attention.h"

#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include <limits>
#include <vector>

#include "gsa/runtime/error.h"
#include "gsa/runtime/memory_tracker.h"
#include "kernel_tensors.h"


namespace gsa {
namespace {

// Passed to the autograd function as a non-tensor argument (a plain tensor argument would count as an input).
struct KeyRows {
  at::Tensor rows;  // [Kt * kTileKeys] int32 or undefined
};

struct PlanCapsule : torch::CustomClassHolder {
  explicit PlanCapsule(std::shared_ptr<const TilePlan> p) : plan(std::move(p)) {}
  std::shared_ptr<const TilePlan> plan;
};

// The k/v row of every key slot of the plan's key tiles under key_slot ([Kt * kTileKeys] int32, -1 = not held).
at::Tensor key_rows_for(const TilePlan& tiles, const at::Tensor& key_slot) {
  at::NoGradGuard no_grad;
  const at::Tensor pos = tiles.key_tile_positions.to(at::kLong);
  const at::Tensor rows = tiles.key_tile_row.to(at::kLong).repeat_interleave(kernels::kTileKeys);
  return key_slot.to(pos.device()).index({rows, pos.clamp_min(0)}).masked_fill(pos < 0, -1).to(at::kInt).contiguous();
}

kernels::SparseAttentionParams make_params(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                           const TilePlan& tiles, const at::Tensor& key_rows, bool selective, bool keep,
                                           double scale) {
  kernels::SparseAttentionParams p;
  p.dtype = kernel_dtype(q);
  p.batch = static_cast<int32_t>(q.size(0));
  p.q_heads = static_cast<int32_t>(q.size(1));
  p.kv_heads = static_cast<int32_t>(k.size(1));
  p.head_dim = static_cast<int32_t>(q.size(3));
  p.num_keys = static_cast<int32_t>(tiles.num_keys);
  p.q_begin = static_cast<int32_t>(tiles.q_begin);
  p.num_queries = static_cast<int32_t>(tiles.num_queries);
  p.row_query_end = tiles.row_query_end.data_ptr<int32_t>();
  p.scale = static_cast<float>(scale);
  p.rule.levels = static_cast<int32_t>(tiles.levels);
  p.rule.prev_chunks = static_cast<int32_t>(tiles.prev_chunks);
  p.rule.selective = selective ? 1 : 0;
  p.rule.keep_unselected_gists = keep ? 1 : 0;
  p.token_meta = tiles.token_meta.data_ptr<int32_t>();
  p.plan = tiles.view();
  p.key_rows = key_rows.defined() ? key_rows.data_ptr<int32_t>() : nullptr;
  p.kv_rows = static_cast<int32_t>(k.size(2));
  p.q = q.data_ptr();
  p.k = k.data_ptr();
  p.v = v.data_ptr();
  for (int i = 0; i < 3; ++i) {
    p.q_stride[i] = q.stride(i);
    p.kv_stride[i] = k.stride(i);
  }
  return p;
}

void check_status(kernels::Status status, const char* what, const at::Tensor& q) {
  GSA_CHECK(status == kernels::Status::kOk, "sparse attention ", what, " failed on ", q.device(), " for q ", q.sizes(),
            " ", q.scalar_type(), ": ", kernels::status_string(status));
}

void run(const kernels::SparseAttentionParams& p, const at::Tensor& q, bool backward) {
  const kernels::Status status = run_kernel(
      q.device(),
      [&](void* stream) {
        return backward ? kernels::sparse_attention_backward_cuda(p, stream)
                        : kernels::sparse_attention_forward_cuda(p, stream);
      },
      [&] {
        return backward ? kernels::sparse_attention_backward_reference(p)
                        : kernels::sparse_attention_forward_reference(p);
      });
  check_status(status, backward ? "backward" : "forward", q);
}

class SparseAttentionFunction : public torch::autograd::Function<SparseAttentionFunction> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& q_in,
                                                const at::Tensor& k_in, const at::Tensor& v_in,
                                                std::shared_ptr<const TilePlan> tiles, const KeyRows& key_rows,
                                                bool selective, bool keep, double scale) {
    at::NoGradGuard no_grad;
    // The kernels index out, d_out and dq with q's strides and k, v, dk, dv with k's (SparseAttentionParams), so
    // all of them get one layout, the contiguous one: the model's q, k, v are transposed views, and a contiguous
    // `out` read back with their strides was garbage.
    const at::Tensor q = rows_for_16_byte_loads(q_in.contiguous()), k = rows_for_16_byte_loads(k_in.contiguous());
    const at::Tensor v = rows_for_16_byte_loads(v_in.contiguous());
    // The kernels write every query of the plan; only padding queries (rows shorter than the others) need a fill.
    const auto out_options = q.options().memory_format(at::MemoryFormat::Contiguous);
    at::Tensor out = tiles->has_padding ? at::zeros(q.sizes(), out_options) : at::empty(q.sizes(), out_options);
    at::Tensor lse = at::empty({q.size(0), q.size(1), q.size(2)}, q.options().dtype(at::kFloat));
    if (tiles->has_padding) lse.fill_(-std::numeric_limits<float>::infinity());
    kernels::SparseAttentionParams p = make_params(q, k, v, *tiles, key_rows.rows, selective, keep, scale);
    p.out = out.data_ptr();
    p.lse = lse.data_ptr<float>();
    run(p, q, /*backward=*/false);
    ctx->save_for_backward({q, k, v, out, lse});
    ctx->saved_data["tiles"] = c10::IValue::make_capsule(c10::make_intrusive<PlanCapsule>(std::move(tiles)));
    ctx->saved_data["key_rows"] = key_rows.rows;
    ctx->saved_data["selective"] = selective;
    ctx->saved_data["keep"] = keep;
    ctx->saved_data["scale"] = scale;
    return {out, lse};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &out = saved[3], &lse = saved[4];
    const auto capsule = c10::static_intrusive_pointer_cast<PlanCapsule>(ctx->saved_data["tiles"].toCapsule());
    const TilePlan& tiles = *capsule->plan;
    GSA_CHECK(tiles.has_backward, "sparse attention backward: the tile plan was built without backward lists (the "
              "forward ran with gradients off); build the attention plan's tiles with gradients on");
    const at::Tensor d_out =
        grads[0].defined() ? rows_for_16_byte_loads(grads[0].to(q.scalar_type()).contiguous()) : at::zeros_like(out);
    const at::Tensor d_lse = grads[1].defined() ? grads[1].to(at::kFloat).contiguous() : at::Tensor();
    at::Tensor dq = tiles.has_padding ? at::zeros_like(q) : at::empty_like(q);
    at::Tensor dk = at::empty_like(k), dv = at::empty_like(v);
    at::Tensor delta = at::empty_like(lse);
    const auto fp32 = q.options().dtype(at::kFloat);
    const bool on_cuda = q.is_cuda();
    at::Tensor dk_accum =
        on_cuda ? at::empty({k.size(0), k.size(1), k.size(2), k.size(3)}, fp32) : at::empty({1}, fp32);
    at::Tensor dv_accum = on_cuda ? at::empty_like(dk_accum) : at::empty({1}, fp32);
    // dq by atomic adds in the key-tile pass (one pass over the tiles fewer) when the queries see few key tiles;
    // the atomic traffic grows with them (measured on an H200, docs/PERFORMANCE.md: 6% faster at 16 key tiles per
    // query block, 12% slower at 64). Never for a deterministic plan, nor where the kernels do not fuse dq (the
    // Hopper key pass).
    constexpr double kFusedDqMaxKeyTiles = 24;
    const int64_t blocks = tiles.query_block_row.numel();
    const double key_tiles_per_block = blocks > 0 ? double(tiles.num_forward_pairs) / double(blocks) : 0.0;
    const bool fused_dq = on_cuda && !tiles.deterministic && key_tiles_per_block <= kFusedDqMaxKeyTiles &&
                          kernels::sparse_attention_backward_fuses_dq();
    at::Tensor dq_accum = fused_dq ? at::empty({q.size(0), q.size(1), q.size(2), q.size(3)}, fp32) : at::Tensor();
    // Stored dS (Hopper): a dS tile of kTileKeys x kTileRows per visited pair and KV head (38 GB at 128K tokens with
    // 8 KV heads). It saves the query-block pass's recomputation of Q K^T and dO V^T (work that grows with the head
    // dim) for stores of a fixed 8 KiB a pair, which slow the key pass more as the workspace grows. Measured in the
    // thirty-third session (forward+backward, GSA_SM90_DQ=2 against =1; docs/kernels-notes.md): head dim 128 7-8%
    // faster at 4K-16K, at 24K (1.4 GiB) 2% on an H200 and even on an H100, at 32K (2.4 GiB) even on an H200 and 2-3%
    // slower on an H100; head dim 64 8-10% faster up to 16K, 4-7% at 32K, 3.5-8% at 64K (9 GiB), 2-4% at 128K (35
    // GiB, too much transient memory a layer for that). So by default up to 2 GiB at head dim 128 and 16 GiB at 64;
    // GSA_SM90_DQ=2 takes it at any size. Where it does not fit, dq comes from the query-block pass as without it --
    // decided from the memory left (with room for the rest of the step), not by meeting out-of-memory: the allocator
    // would empty its cache first, every layer.
    const int64_t stored_ds_default_bytes = q.size(3) <= 64 ? int64_t(16) << 30 : int64_t(2) << 30;
    constexpr int64_t kStoredDsHeadroom = int64_t(2) << 30;
    const kernels::StoredDs stored_ds =
        on_cuda ? kernels::sparse_attention_backward_stored_ds() : kernels::StoredDs::kNever;
    const int64_t ds_bytes = stored_ds_workspace_bytes(tiles, k.size(1), q.element_size());
    at::Tensor ds;
    if (ds_bytes > 0 && (stored_ds == kernels::StoredDs::kAlways ||
                         (stored_ds == kernels::StoredDs::kSmallPlans && ds_bytes <= stored_ds_default_bytes))) {
      const int64_t available = MemoryTracker::available_bytes(q.device());
      if (available < 0 || ds_bytes + kStoredDsHeadroom <= available) {
        try {
          ds = at::empty({k.size(1), tiles.query_tile_key_tiles.numel(), kernels::kTileKeys * kernels::kTileRows},
                         q.options());
        } catch (const c10::OutOfMemoryError&) {  // reserved bytes too fragmented after all
          ds = at::Tensor();
        }
      }
    }
    kernels::SparseAttentionParams p =
        make_params(q, k, v, tiles, ctx->saved_data["key_rows"].toTensor(), ctx->saved_data["selective"].toBool(),
                    ctx->saved_data["keep"].toBool(), ctx->saved_data["scale"].toDouble());
    p.out = out.data_ptr();
    p.lse = lse.data_ptr<float>();
    p.d_out = d_out.data_ptr();
    p.d_lse = d_lse.defined() ? d_lse.data_ptr<float>() : nullptr;
    p.delta = delta.data_ptr<float>();
    p.dq = dq.data_ptr();
    p.dk = dk.data_ptr();
    p.dv = dv.data_ptr();
    p.dk_accum = dk_accum.data_ptr<float>();
    p.dv_accum = dv_accum.data_ptr<float>();
    p.dq_accum = dq_accum.defined() ? dq_accum.data_ptr<float>() : nullptr;
    p.ds = ds.defined() ? ds.data_ptr() : nullptr;
    run(p, q, /*backward=*/true);
    return {dq, dk, dv, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

int64_t stored_ds_workspace_bytes(const TilePlan& tiles, int64_t kv_heads, int64_t element_size) {
  return kv_heads * tiles.query_tile_key_tiles.numel() * kernels::kTileKeys * kernels::kTileRows * element_size;
}

std::string sparse_attention_unsupported(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4) return "the kernels take [B, H, T, D] tensors";
  if (q.scalar_type() != at::kBFloat16 && q.scalar_type() != at::kHalf) {
    return str_cat("the kernels take bf16 or fp16, not ", q.scalar_type());
  }
  if (k.scalar_type() != q.scalar_type() || v.scalar_type() != q.scalar_type()) return "q, k and v differ in dtype";
  if (q.size(3) != 64 && q.size(3) != 128) return str_cat("the kernels take head dim 64 or 128, not ", q.size(3));
  if (k.size(1) == 0 || q.size(1) % k.size(1) != 0) return "query heads are not a multiple of kv heads";
  const int64_t group = q.size(1) / k.size(1);
  if (group != 1 && group != 2 && group != 4 && group != 8) {
    return str_cat("the kernels pack 1, 2, 4 or 8 query heads per kv head, not ", group);
  }
  if (!q.is_cuda() && !q.is_cpu()) return str_cat("no sparse attention backend for ", q.device());
#ifndef GSA_HAVE_CUDA
  if (q.is_cuda()) return "gsa was built without CUDA kernels";
#endif
  return "";
}

SparseAttentionOutput sparse_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                       std::shared_ptr<const TilePlan> tiles, bool selective,
                                       bool keep_unselected_gists, double scale, const at::Tensor& key_slot) {
  RECORD_FUNCTION("gsa::sparse_attention", std::vector<c10::IValue>());
  const std::string why = sparse_attention_unsupported(q, k, v);
  GSA_CHECK(why.empty(), "sparse attention: ", why);
  GSA_CHECK(tiles != nullptr, "sparse attention needs a tile plan");
  GSA_CHECK(q.size(0) == tiles->batch && k.size(0) == tiles->batch, "batch ", q.size(0), " / ", k.size(0),
            " does not match the tile plan's ", tiles->batch);
  GSA_CHECK(q.size(2) == tiles->num_queries && (key_slot.defined() || k.size(2) == tiles->num_keys), "q ", q.sizes(),
            " and k ", k.sizes(), " do not match the tile plan's ", tiles->num_queries, " queries over ",
            tiles->num_keys, " keys");
  if (key_slot.defined()) {
    GSA_CHECK(key_slot.dim() == 2 && key_slot.size(0) == tiles->batch && key_slot.size(1) >= tiles->num_keys,
              "key slot table ", key_slot.sizes(), " does not cover the tile plan's [", tiles->batch, ", ",
              tiles->num_keys, "] positions");
  }
  GSA_CHECK(q.size(1) / k.size(1) == tiles->group, "the tile plan is cut for ", tiles->group,
            " query heads per kv head, q/k have ", q.size(1), "/", k.size(1));
  GSA_CHECK(k.sizes() == v.sizes() && q.size(3) == k.size(3), "k ", k.sizes(), ", v ", v.sizes(), " and q ", q.sizes(),
            " do not fit together");
  GSA_CHECK(q.device() == tiles->token_meta.device() && k.device() == q.device() && v.device() == q.device(),
            "q, k, v and the tile plan must be on one device");
  const at::Tensor key_rows = key_slot.defined() ? key_rows_for(*tiles, key_slot) : at::Tensor();
  auto outputs = SparseAttentionFunction::apply(q, k, v, std::move(tiles), KeyRows{key_rows}, selective,
                                                keep_unselected_gists, scale);
  return {outputs[0], outputs[1]};
}

}  // namespace gsa
