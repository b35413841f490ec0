#include "gsa/runtime/selected_attention.h"

#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <limits>

#include "gsa/kernels/selected_attention.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/sparse_decode.h"
#include "kernel_tensors.h"


namespace gsa {
namespace {

// Per-(query, KV head) base addresses of x [B, Hkv, S, D] for queries of batch rows `rows` [N] and their
// `groups` KV heads (from heads [N] when it is not empty, else from 0): [N * groups] int64 on x's device, read by the
// kernels as a KvRows pointer table (kv_rows.h).
at::Tensor row_table(const at::Tensor& x, const at::Tensor& rows, const at::Tensor& heads, int64_t groups) {
  at::Tensor head = at::arange(groups, rows.options().dtype(at::kLong)).view({1, groups});         // [1, G]
  if (heads.numel() > 0) head = head + heads.to(at::kLong).view({-1, 1});                          // [N, G]
  const at::Tensor offsets = rows.to(at::kLong).view({-1, 1}) * x.stride(0) + head * x.stride(1);  // [N, G]
  return (offsets * static_cast<int64_t>(x.element_size()) + reinterpret_cast<int64_t>(x.data_ptr()))
      .reshape({-1})
      .contiguous();
}

kernels::KvRows table_rows(const at::Tensor& table, const at::Tensor& x) {
  kernels::KvRows r;
  r.heads = reinterpret_cast<void* const*>(table.data_ptr<int64_t>());
  r.row_stride = x.stride(2);
  return r;
}

class SelectedAttentionFunction : public torch::autograd::Function<SelectedAttentionFunction> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& q_in,
                                                const at::Tensor& k_in, const at::Tensor& v_in, const at::Tensor& rows,
                                                const at::Tensor& key_rows_in, const at::Tensor& heads, double scale) {
    at::NoGradGuard no_grad;
    const at::Tensor q = rows_for_16_byte_loads(q_in), k = rows_for_16_byte_loads(k_in);
    const at::Tensor v = rows_for_16_byte_loads(v_in);
    const at::Tensor key_rows = key_rows_in.to(at::kInt).contiguous();  // [N, G, R]
    const int64_t groups = key_rows.size(1);
    DecodeAttention r;
    if (q.size(0) == 0 || key_rows.size(2) == 0) {  // nothing to attend: out 0, lse -inf
      r.out = at::zeros(q.sizes(), q.options().dtype(at::kFloat));
      r.lse = at::full({q.size(0), q.size(1)}, -std::numeric_limits<float>::infinity(), r.out.options());
    } else {
      const at::Tensor k_table = row_table(k, rows, heads, groups), v_table = row_table(v, rows, heads, groups);
      r = sparse_decode_rows(q, table_rows(k_table, k), table_rows(v_table, v), groups, key_rows, scale);
    }
    ctx->save_for_backward({q, k, v, rows, key_rows, heads, r.out, r.lse});
    ctx->saved_data["scale"] = scale;
    return {r.out, r.lse};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &rows = saved[3], &key_rows = saved[4];
    const at::Tensor &heads = saved[5], &out = saved[6], &lse = saved[7];
    const auto fp32 = q.options().dtype(at::kFloat);
    const at::Tensor d_out = grads[0].defined() ? grads[0].to(at::kFloat).contiguous() : at::zeros_like(out);
    at::Tensor delta = (d_out * out).sum(-1);  // [N, Hq]
    if (grads[1].defined()) delta = delta - grads[1].to(at::kFloat);
    delta = delta.contiguous();
    at::Tensor dq = at::zeros(q.sizes(), fp32);                                   // [N, Hq, D]
    at::Tensor dk = at::zeros(k.sizes(), fp32), dv = at::zeros(v.sizes(), fp32);  // [B, Hkv, S, D]
    const int64_t n = q.size(0), hkv = key_rows.size(1), r = key_rows.size(2);
    if (n > 0 && r > 0) {  // else nothing was attended: the gradients stay 0
      const at::Tensor k_table = row_table(k, rows, heads, hkv), v_table = row_table(v, rows, heads, hkv);
      const at::Tensor dk_table = row_table(dk, rows, heads, hkv), dv_table = row_table(dv, rows, heads, hkv);
      kernels::SelectedAttentionBackwardParams p;
      p.dtype = kernel_dtype(q);
      p.num_queries = static_cast<int32_t>(n);
      p.q_heads = static_cast<int32_t>(q.size(1));
      p.kv_heads = static_cast<int32_t>(hkv);
      p.head_dim = static_cast<int32_t>(q.size(2));
      p.max_keys = static_cast<int32_t>(r);
      // Enough CTAs to fill an H200 twice over, at least 256 listed rows per split.
      p.splits = static_cast<int32_t>(std::clamp<int64_t>((2 * 132 + n * hkv - 1) / (n * hkv), 1,
                                                          std::max<int64_t>(1, r / 256)));
      p.scale = static_cast<float>(ctx->saved_data["scale"].toDouble());
      p.q = q.data_ptr();
      p.q_stride[0] = q.stride(0);
      p.q_stride[1] = q.stride(1);
      p.k = table_rows(k_table, k);
      p.v = table_rows(v_table, v);
      p.key_rows = key_rows.data_ptr<int32_t>();
      p.d_out = d_out.data_ptr<float>();
      p.lse = lse.data_ptr<float>();
      p.delta = delta.data_ptr<float>();
      p.dq = dq.data_ptr<float>();
      p.dk = table_rows(dk_table, dk);
      p.dv = table_rows(dv_table, dv);
      const kernels::Status status = run_kernel(
          q.device(), [&](void* stream) { return kernels::selected_attention_backward_cuda(p, stream); },
          [&] { return kernels::selected_attention_backward_reference(p); });
      GSA_CHECK(status == kernels::Status::kOk, "selected attention backward failed on ", q.device(), " for q ",
                q.sizes(), ": ", kernels::status_string(status));
    }
    return {dq.to(q.scalar_type()), dk.to(k.scalar_type()), dv.to(v.scalar_type()), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor()};
  }
};

}  // namespace

std::string selected_attention_unsupported(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                           int64_t kv_heads) {
  if (q.dim() != 3 || k.dim() != 4 || v.dim() != 4) return "the kernels take q [N, Hq, D] and k, v [B, Hkv, S, D]";
  if (k.scalar_type() != q.scalar_type() || v.scalar_type() != q.scalar_type()) return "q, k and v differ in dtype";
  if (!q.is_cuda() && !q.is_cpu()) return str_cat("no selected attention kernels for ", q.device());
  return sparse_decode_unsupported(q, k.scalar_type(), kv_heads > 0 ? kv_heads : k.size(1));
}

PartialAttention selected_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                    const at::Tensor& rows, const at::Tensor& key_rows, double scale,
                                    const at::Tensor& heads) {
  GSA_CHECK(key_rows.dim() == 3 && key_rows.size(0) == q.size(0) &&
                (heads.defined() ? key_rows.size(1) <= k.size(1) : key_rows.size(1) == k.size(1)),
            "selected attention: key_rows ", key_rows.sizes(), " do not fit q ", q.sizes(), " and ", k.size(1),
            " kv heads");
  const std::string why = selected_attention_unsupported(q, k, v, key_rows.size(1));
  GSA_CHECK(why.empty(), "selected attention: ", why);
  GSA_CHECK(k.sizes() == v.sizes() && q.size(2) == k.size(3), "selected attention: q ", q.sizes(), ", k ", k.sizes(),
            " and v ", v.sizes(), " do not fit together");
  GSA_CHECK(rows.dim() == 1 && rows.size(0) == q.size(0) && (!heads.defined() || heads.sizes() == rows.sizes()),
            "selected attention: rows ", rows.sizes(), (heads.defined() ? str_cat(" and heads ", heads.sizes()) : ""),
            " do not fit q ", q.sizes());
  auto check_range = [](const at::Tensor& t, int64_t low, int64_t high, const char* what) {
    if (!t.defined() || t.is_cuda() || t.numel() == 0) return;
    GSA_CHECK(t.min().item<int64_t>() >= low && t.max().item<int64_t>() < high, "selected attention: a ", what,
              " lies outside [", low, ", ", high, ")");
  };
  check_range(rows, 0, k.size(0), "batch row");
  check_range(key_rows, -1, k.size(2), "key row");
  check_range(heads, 0, k.size(1) - key_rows.size(1) + 1, "first KV head");
  // An autograd function takes no undefined tensor: "no heads" travels as an empty one.
  const at::Tensor heads_arg = heads.defined() ? heads : at::empty({0}, rows.options().dtype(at::kLong));
  const auto outputs = SelectedAttentionFunction::apply(q, k, v, rows, key_rows, heads_arg, scale);
  return {outputs[0], outputs[1]};
}

}  // namespace gsa
