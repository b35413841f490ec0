#include "gsa/runtime/decode_caches.h"

#include <algorithm>

#include "gsa/kernels/kv_append.h"
#include "gsa/runtime/error.h"
#include "kernel_tensors.h"


namespace gsa {

DecodeCaches::DecodeCaches(KvCache& batched) : batched_(&batched) {
  GSA_CHECK(!batched.k.empty(), "decode caches: the batched cache has no layers");
}

DecodeCaches::DecodeCaches(std::vector<KvCache*> sequences) : sequences_(std::move(sequences)) {
  GSA_CHECK(!sequences_.empty(), "decode caches: no sequences");
  for (const KvCache* c : sequences_) {
    GSA_CHECK(c != nullptr && c->k.size() == sequences_[0]->k.size() && !c->k.empty(),
              "decode caches: every sequence needs a cache with the same layers");
    GSA_CHECK(c->k[0].size(0) == 1, "decode caches: a per-sequence cache holds one sequence, not ", c->k[0].size(0));
  }
}

int64_t DecodeCaches::batch() const {
  return batched_ != nullptr ? batched_->k[0].size(0) : static_cast<int64_t>(sequences_.size());
}

int64_t DecodeCaches::capacity(int64_t b) const {
  return batched_ != nullptr ? batched_->capacity() : sequences_[b]->capacity();
}

const at::Tensor& DecodeCaches::tensor(int64_t b, int64_t layer, bool values) const {
  const KvCache& c = batched_ != nullptr ? *batched_ : *sequences_[b];
  return values ? c.v[layer] : c.k[layer];
}

const at::Tensor& DecodeCaches::sample(int64_t layer) const { return tensor(0, layer, false); }

void DecodeCaches::append(int64_t layer, const at::Tensor& positions, const at::Tensor& k, const at::Tensor& v) {
  const int64_t B = batch();
  GSA_CHECK(k.dim() == 3 && k.size(0) == B && k.sizes() == v.sizes(), "decode caches: append wants k, v [", B,
            ", Hkv, D], got ", k.sizes(), " and ", v.sizes());
  const at::Tensor& like = sample(layer);
  const bool kernel = is_half_type(like.scalar_type()) &&
                      like.size(3) % 8 == 0 && (like.is_cuda() || !batched());
  if (!kernel) {  // LibTorch ops: fp32 caches, or a batched cache on the CPU
    if (batched_ != nullptr) {
      const at::Tensor batch_index = at::arange(B, positions.options());
      batched_->k[layer].index_put_({batch_index, at::indexing::Slice(), positions}, k);
      batched_->v[layer].index_put_({batch_index, at::indexing::Slice(), positions}, v);
    } else {
      for (int64_t b = 0; b < B; ++b) {
        const at::Tensor at_b = positions.narrow(0, b, 1);
        sequences_[b]->k[layer].index_put_({0, at::indexing::Slice(), at_b}, k[b].unsqueeze(1));
        sequences_[b]->v[layer].index_put_({0, at::indexing::Slice(), at_b}, v[b].unsqueeze(1));
      }
    }
    return;
  }
  const at::Tensor k_new = k.contiguous().to(like.scalar_type()), v_new = v.contiguous().to(like.scalar_type());
  const at::Tensor pos = positions.to(at::kLong).contiguous();
  kernels::KvAppendParams p;
  p.dtype = kernel_dtype(like);
  p.batch = static_cast<int32_t>(B);
  p.kv_heads = static_cast<int32_t>(like.size(1));
  p.head_dim = static_cast<int32_t>(like.size(3));
  p.k_new = k_new.data_ptr();
  p.v_new = v_new.data_ptr();
  p.new_stride[0] = k_new.stride(0);
  p.new_stride[1] = k_new.stride(1);
  p.positions = pos.data_ptr<int64_t>();
  p.k = rows(layer, false);
  p.v = rows(layer, true);
  const kernels::Status status = run_kernel(
      like.device(), [&](void* stream) { return kernels::kv_append_cuda(p, stream); },
      [&] { return kernels::kv_append_reference(p); });
  GSA_CHECK(status == kernels::Status::kOk, "kv append failed: ", kernels::status_string(status));
}

kernels::KvRows DecodeCaches::rows(int64_t layer, bool values) {
  if (batched_ != nullptr) return kv_rows_of(values ? batched_->v[layer] : batched_->k[layer]);
  kernels::KvRows r;
  const at::Tensor& like = sample(layer);
  r.row_stride = like.stride(2);
  const int64_t B = batch(), hkv = like.size(1);
  if (tables_.size() <= static_cast<size_t>(layer)) {
    tables_.resize(layer + 1);
    table_bases_.resize(layer + 1);
  }
  std::vector<void*> bases;
  for (int64_t b = 0; b < B; ++b) {
    for (int values_flag = 0; values_flag < 2; ++values_flag) {
      const at::Tensor& t = tensor(b, layer, values_flag != 0);
      GSA_CHECK(t.stride(2) == r.row_stride && t.stride(3) == 1 && t.size(1) == hkv, "decode caches: sequence ", b,
                " has a cache of another layout");
      bases.push_back(t.data_ptr());
    }
  }
  if (bases != table_bases_[layer]) {
    at::Tensor table = at::empty({2, B * hkv}, at::kLong);
    int64_t* out = table.data_ptr<int64_t>();
    for (int64_t b = 0; b < B; ++b) {
      for (int values_flag = 0; values_flag < 2; ++values_flag) {
        const at::Tensor& t = tensor(b, layer, values_flag != 0);
        for (int64_t h = 0; h < hkv; ++h) {
          out[values_flag * B * hkv + b * hkv + h] =
              reinterpret_cast<int64_t>(static_cast<char*>(t.data_ptr()) + h * t.stride(1) * t.element_size());
        }
      }
    }
    tables_[layer] = table.to(like.device());
    table_bases_[layer] = bases;
  }
  r.heads = reinterpret_cast<void* const*>(tables_[layer].data_ptr<int64_t>() + (values ? B * hkv : 0));
  return r;
}

at::Tensor DecodeCaches::stacked(int64_t layer, bool values) const {
  if (batched_ != nullptr) return values ? batched_->v[layer] : batched_->k[layer];
  int64_t longest = 0;
  for (int64_t b = 0; b < batch(); ++b) longest = std::max(longest, capacity(b));
  std::vector<at::Tensor> padded;
  for (int64_t b = 0; b < batch(); ++b) {
    const at::Tensor& t = tensor(b, layer, values);
    padded.push_back(at::constant_pad_nd(t, {0, 0, 0, longest - t.size(2)}));
  }
  return at::cat(padded, 0);
}

}  // namespace gsa
