// The KV caches of a decode batch as the decode kernels and the reference backend read and extend them: one
// batched KvCache (sequence b is batch row b) or one KvCache per sequence ([1, Hkv, C_b, D] each, of different
// capacities: a server's per-request caches that grow in blocks), which the kernels reach through
// per-(sequence, KV head) pointer tables (kernels/kv_rows.h), so a batch of any composition decodes in one launch.
//
// Contract: the caches outlive this object. A cache may be replaced between steps (growth); the pointer tables
// follow (checked per call by comparing base pointers, O(layers x batch) host work when one moved).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "gsa/kernels/kv_rows.h"
#include "gsa/runtime/llama_model.h"

namespace gsa {

class DecodeCaches {
 public:
  explicit DecodeCaches(KvCache& batched);
  explicit DecodeCaches(std::vector<KvCache*> sequences);

  int64_t batch() const;
  int64_t capacity(int64_t b) const;  // positions sequence b's cache holds
  bool batched() const { return batched_ != nullptr; }
  // One of the layer's cache tensors (dtype, device, heads, head dim).
  const at::Tensor& sample(int64_t layer) const;

  // Writes one step's rows: k, v [B, Hkv, D] at row positions [B] (int64, on the caches' device) of `layer`.
  void append(int64_t layer, const at::Tensor& positions, const at::Tensor& k, const at::Tensor& v);
  // The layer's K (values = false) or V rows for the kernels (a pointer table on the device for per-sequence
  // caches).
  kernels::KvRows rows(int64_t layer, bool values);
  // [B, Hkv, C, D]: the batched tensor itself, or the per-sequence caches zero-padded to the longest capacity
  // and stacked (a copy: the reference backend's input).
  at::Tensor stacked(int64_t layer, bool values) const;

 private:
  const at::Tensor& tensor(int64_t b, int64_t layer, bool values) const;

  KvCache* batched_ = nullptr;
  std::vector<KvCache*> sequences_;
  std::vector<at::Tensor> tables_;               // [layers] of [2, B * Hkv] int64 device pointer tables
  std::vector<std::vector<void*>> table_bases_;  // [layers] the bases each table was built from
};

}  // namespace gsa
