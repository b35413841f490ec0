#include "gsa/runtime/sparse_decode.h"

#include <algorithm>

#include "gsa/kernels/sparse_decode.h"
#include "gsa/runtime/error.h"
#include "kernel_tensors.h"

#ifdef GSA_HAVE_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#endif

namespace gsa {

DecodeAttention sparse_decode(const at::Tensor& q_in, const at::Tensor& k_in, const at::Tensor& v_in,
                              const at::Tensor& key_rows_in, double scale, int64_t splits) {
  GSA_CHECK(q_in.dim() == 3 && k_in.dim() == 4 && v_in.dim() == 4 && key_rows_in.dim() == 3,
            "sparse_decode wants q [B, Hq, D], k/v [B, Hkv, T, D] and key_rows [B, Hkv, R], got ", q_in.sizes(), ", ",
            k_in.sizes(), ", ", key_rows_in.sizes());
  GSA_CHECK(q_in.scalar_type() == at::kBFloat16 || q_in.scalar_type() == at::kHalf,
            "sparse_decode takes bf16 or fp16, not ", q_in.scalar_type());
  GSA_CHECK(k_in.scalar_type() == q_in.scalar_type() && v_in.scalar_type() == q_in.scalar_type(),
            "sparse_decode: q, k and v differ in dtype");
  GSA_CHECK(k_in.sizes() == v_in.sizes(), "sparse_decode: k ", k_in.sizes(), " and v ", v_in.sizes(), " differ");
  const int64_t B = q_in.size(0), Hq = q_in.size(1), D = q_in.size(2), Hkv = k_in.size(1);
  GSA_CHECK(k_in.size(0) == B && k_in.size(3) == D && key_rows_in.size(0) == B && key_rows_in.size(1) == Hkv,
            "sparse_decode: q ", q_in.sizes(), ", k ", k_in.sizes(), " and key_rows ", key_rows_in.sizes(),
            " do not fit together");
  GSA_CHECK(D == 64 || D == 128, "sparse_decode takes head dim 64 or 128, not ", D);
  GSA_CHECK(Hq % Hkv == 0 && (Hq / Hkv == 1 || Hq / Hkv == 2 || Hq / Hkv == 4 || Hq / Hkv == 8),
            "sparse_decode packs 1, 2, 4 or 8 query heads per kv head, not ", Hq, " / ", Hkv);
  GSA_CHECK(q_in.device() == k_in.device() && k_in.device() == v_in.device(), "sparse_decode: q, k, v on one device");
  GSA_CHECK(splits >= 0, "sparse_decode: splits must be >= 0, got ", splits);
  at::NoGradGuard no_grad;
  const at::Tensor q = rows_for_16_byte_loads(q_in), k = rows_for_16_byte_loads(k_in);
  const at::Tensor v = rows_for_16_byte_loads(v_in);
  const at::Tensor key_rows = key_rows_in.to(q.device(), at::kInt).contiguous();
  const int64_t R = key_rows.size(2);
  if (R > 0 && key_rows_in.device().is_cpu()) {  // lists built on the host are checked (a device list is trusted)
    const int32_t highest = key_rows.max().item<int32_t>();
    GSA_CHECK(highest < k.size(2), "sparse_decode: key_rows reach row ", highest, " of a cache of ", k.size(2),
              " rows");
  }
  if (splits == 0) {
    // Enough CTAs to fill an H100/H200 twice over, at least 64 listed rows per split.
    const int64_t want = (2 * 132 + B * Hkv - 1) / (B * Hkv);
    splits = std::clamp<int64_t>(want, 1, std::max<int64_t>(1, R / 64));
  }
  const auto fp32 = q.options().dtype(at::kFloat);
  DecodeAttention result{at::empty({B, Hq, D}, fp32), at::empty({B, Hq}, fp32)};
  at::Tensor partial_out = at::empty({splits, B * Hq, D}, fp32), partial_lse = at::empty({splits, B * Hq}, fp32);

  kernels::SparseDecodeParams p;
  p.dtype = q.scalar_type() == at::kBFloat16 ? kernels::DType::kBFloat16 : kernels::DType::kFloat16;
  p.batch = static_cast<int32_t>(B);
  p.q_heads = static_cast<int32_t>(Hq);
  p.kv_heads = static_cast<int32_t>(Hkv);
  p.head_dim = static_cast<int32_t>(D);
  p.max_keys = static_cast<int32_t>(R);
  p.splits = static_cast<int32_t>(splits);
  p.scale = static_cast<float>(scale);
  p.q = q.data_ptr();
  p.q_stride[0] = q.stride(0);
  p.q_stride[1] = q.stride(1);
  p.k = k.data_ptr();
  p.v = v.data_ptr();
  for (int i = 0; i < 3; ++i) {
    GSA_CHECK(k.stride(i) == v.stride(i), "sparse_decode: k and v need the same strides");
    p.kv_stride[i] = k.stride(i);
  }
  p.kv_rows = static_cast<int32_t>(k.size(2));
  p.key_rows = key_rows.data_ptr<int32_t>();
  p.partial_out = partial_out.data_ptr<float>();
  p.partial_lse = partial_lse.data_ptr<float>();
  p.out = result.out.data_ptr<float>();
  p.lse = result.lse.data_ptr<float>();

  kernels::Status status;
  if (q.is_cuda()) {
#ifdef GSA_HAVE_CUDA
    const c10::cuda::CUDAGuard guard(q.device());
    status = kernels::sparse_decode_cuda(p, at::cuda::getCurrentCUDAStream(q.device().index()).stream());
#else
    status = kernels::Status::kNoCuda;
#endif
  } else {
    status = kernels::sparse_decode_reference(p);
  }
  GSA_CHECK(status == kernels::Status::kOk, "sparse_decode failed on ", q.device(), " for q ", q.sizes(), ": ",
            kernels::status_string(status));
  return result;
}

}  // namespace gsa
