// Where the key (or value) rows of a batch live, for the decode-side kernels (sparse decode, chunk selection,
// KV append): either one strided tensor [B, Hkv, T, D], or separate per-sequence caches reached through a table
// of per-(sequence, KV head) base pointers, so sequences of different capacities decode in one launch.
//
// Contract: the elements of row r of (sequence b, KV head kv) start at
//   heads != nullptr ? heads[b * kv_heads + kv] + r * row_stride : base + b * stride_b + kv * stride_h + r * row_stride
// (in elements of the tensor's dtype; the D elements of a row are contiguous, rows 16-byte aligned).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define GSA_KV_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define GSA_KV_HOST_DEVICE inline
#endif

namespace gsa::kernels {

struct KvRows {
  void* base = nullptr;                // one tensor (heads == nullptr)
  int64_t stride_b = 0, stride_h = 0;  // its batch and head strides
  int64_t row_stride = 0;              // both forms
  void* const* heads = nullptr;        // [B * Hkv] per-(sequence, KV head) bases, device memory for the kernels

  bool empty() const { return base == nullptr && heads == nullptr; }
  // Element offset arithmetic on T* (T the element type).
  template <typename T>
  GSA_KV_HOST_DEVICE T* head(int b, int kv, int kv_heads) const {
    return heads != nullptr ? static_cast<T*>(heads[int64_t(b) * kv_heads + kv])
                            : static_cast<T*>(base) + int64_t(b) * stride_b + int64_t(kv) * stride_h;
  }
};

}  // namespace gsa::kernels
