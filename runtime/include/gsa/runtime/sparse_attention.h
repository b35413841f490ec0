// Block-sparse GSA attention over a tile plan (tile_plan.h), bound to LibTorch tensors with autograd: the CUDA
// kernels of kernels/sparse_attention.h for CUDA tensors, their float64 CPU reference twin for CPU tensors.
//
// Contract: q [B, Hq, Tq, D] at the plan's query positions, k, v [B, Hkv, T, D] (post-RoPE), bf16 or fp16,
// D 64 or 128, Hq / Hkv == tiles.group. Returns out [B, Hq, Tq, D] in q's dtype (0 for padding queries) and
// lse [B, Hq, Tq] fp32 (-inf where a query sees no key), the softmax of scale * q.k over the keys the mask rule
// allows (in a selective layer, suffix queries without gists, unless keep_unselected_gists). Both outputs are
// differentiable (the lse gradient is what merging with other partial results needs).
#pragma once

#include <memory>
#include <string>

#include <ATen/ATen.h>

#include "gsa/runtime/tile_plan.h"

namespace gsa {

struct SparseAttentionOutput {
  at::Tensor out;  // [B, Hq, Tq, D] q's dtype
  at::Tensor lse;  // [B, Hq, Tq] fp32
};

// Why these inputs cannot run on the kernels (dtype, head dim, group, device), or "" when they can.
std::string sparse_attention_unsupported(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);

// Bytes of the stored-dS backward's workspace for this plan: one kTileKeys x kTileRows tile of element_size bytes
// per (query tile, key tile) pair of the plan and KV head. The backward allocates it on Hopper where it is small
// enough for the head dim (sparse_attention.cpp) or GSA_SM90_DQ=2 asks for it, and it fits.
int64_t stored_ds_workspace_bytes(const TilePlan& tiles, int64_t kv_heads, int64_t element_size);

// key_slot (optional, [B, >= T] int64, as KeyView::slot): k/v hold only some positions, key_slot[b, t] the row of
// position t or -1; pairs with keys not held are left out. Undefined: k/v row t holds position t.
SparseAttentionOutput sparse_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                       std::shared_ptr<const TilePlan> tiles, bool selective,
                                       bool keep_unselected_gists, double scale, const at::Tensor& key_slot = {});

}  // namespace gsa
