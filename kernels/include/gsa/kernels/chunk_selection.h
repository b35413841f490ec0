// Chunk selection (method section 8, runtime/selection.h's contract) as kernels: for each selective query and
// each KV group, score the query heads' raw q.k against one level's gist keys, keep each head's top kk, descend
// to the chosen gists' children level by level, take the union over the group's heads, and list the rows to
// unfold (the raw tokens of the chosen level-0 chunks, then the chosen gists of every level).
//
// Contract, per query s (batch row row[s]) and query head h (KV head h / group):
//   budget  = fixed_k > 0 ? fixed_k : floor(floor(floor(key_length[s] / compression) / group) / chunk) + 1;
//   kk_l    = min(budget, max(1, floor(doc_gists[s, l] / 4)));
//   level L-1: candidates are the document's top-level gists top_begin[s] .. top_begin[s] + doc_gists[s, L-1] - 1;
//   level l < L-1: the children child_begin_{l+1}[row, p] + i (i < child_count_{l+1}[row, p]) of the parents p
//   head h chose at level l+1;
//   a head keeps its kk_l best candidates by score q[s, h] . k[row, kv, gist_pos_l[row, c]] (fp32 sums of the
//   bf16/fp16 products; fewer when there are fewer candidates). Equal scores: the lower gist first (the reference
//   twin, runtime/selection.cpp's LibTorch selection and the tests' brute force alike), except where a level's
//   select is the radix select -- over 1,024 candidates a head without GSA_TOPK_HEAD_SELECT, and the sliced top
//   level -- which takes equal scores at the threshold in the order its threads arrive.
// Outputs, per (s, kv): selected_l [Ns, Hkv, M_l] the union of the group's chosen level-l gist indices,
// ascending, then -1; key_pos [Ns, Hkv, R] with R = M_0 * max_chunk_span + sum_l M_l: slot r * span + i holds
// the i-th row of chunk selected_0[r] (rows chunk_begin[row, j] .. gist_pos_0[row, j] - 1 whose key_level < 0)
// or -1, followed by the positions of selected_0, selected_1, ... (-1 where the index is -1); list (s, kv) starts
// at key_pos + (s * Hkv + kv) * key_pos_row_stride (R when 0). A row with
// covered[row, pos] != 0 (when given) is written as -1 (decode: rows its list already holds).
// Tables are int64 row-major with the given row strides; q [Ns, Hq, D]; k rows per kv_rows.h: the key of
// position pos of batch row `row` is k's row key_slot[row * key_slot_stride + pos] when key_slot is given (keys
// held in other columns than their positions, e.g. a sequence-parallel rank's replicated gist tree; every gist's
// slot must be >= 0), row pos otherwise.
// dtype bf16 or fp16; D 64 or 128; group 1, 2, 4 or 8; levels 1..4.
#pragma once

#include <cstdint>

#include "gsa/kernels/kv_rows.h"
#include "gsa/kernels/lse_merge.h"         // Status
#include "gsa/kernels/sparse_attention.h"  // DType

namespace gsa::kernels {

constexpr int kMaxSelectionLevels = 4;

struct ChunkSelectionParams {
  DType dtype = DType::kBFloat16;
  int32_t num_queries = 0, q_heads = 0, kv_heads = 0, head_dim = 0, levels = 1;
  const void* q = nullptr;
  int64_t q_stride[2] = {0, 0};        // query, head
  KvRows k;                            // the keys (kv_rows.h)
  const int64_t* key_slot = nullptr;   // optional [B, key_slot_stride]: k's row of each position
  int64_t key_slot_stride = 0;

  const int64_t* row = nullptr;        // [Ns]
  const int64_t* key_length = nullptr; // [Ns]
  const int64_t* doc_gists = nullptr;  // [Ns, levels]
  const int64_t* top_begin = nullptr;  // [Ns]
  int64_t fixed_k = 0;                 // > 0: fixed budget; 0: adaptive
  int64_t compression = 1, chunk = 1;  // r = c0 * c1^(L-1), c0

  const int64_t* gist_pos[kMaxSelectionLevels] = {};     // [B, G_l]
  int64_t gist_stride[kMaxSelectionLevels] = {};         // G_l (row stride)
  const int64_t* child_begin[kMaxSelectionLevels] = {};  // [B, G_l], l >= 1
  const int64_t* child_count[kMaxSelectionLevels] = {};
  int32_t max_children[kMaxSelectionLevels] = {};        // l >= 1
  const int64_t* chunk_begin = nullptr;                  // [B, G_0] (stride gist_stride[0])
  int32_t max_chunk_span = 0;
  const int8_t* key_level = nullptr;                     // [B, key_level_stride]
  int64_t key_level_stride = 0;
  const uint8_t* covered = nullptr;                      // optional [B, covered_stride]
  int64_t covered_stride = 0;

  // Sizes the caller fixes (host bounds, see selection_workspace): per level the most a head keeps (K_l) and
  // the candidate count per head (C_l: doc top-level gist bound at L-1, K_{l+1} * max_children[l+1] below).
  int32_t keep[kMaxSelectionLevels] = {};
  int32_t candidates[kMaxSelectionLevels] = {};
  // Workspace (device memory the caller allocates): scores [Ns * Hq * max_l C_l] fp32, chosen per head
  // [levels][Ns * Hq * K_l] int32 (offsets chosen_offset[l]), bitmap [Ns * Hkv * levels * bitmap_words] uint32
  // (the kernels clear it).
  float* scores = nullptr;
  int32_t* chosen = nullptr;
  int64_t chosen_offset[kMaxSelectionLevels] = {};
  uint32_t* bitmap = nullptr;
  int64_t bitmap_words = 0;            // per (query, KV head): ceil(max_l G_l / 32)
  // Optional two-stage top-k of the top level (CUDA only): top_slices > 1 splits each head's C_{L-1} candidates
  // into that many slices, whose K_{L-1} best go to slice_scores / slice_ids [Ns * Hq * top_slices * K_{L-1}].
  int32_t top_slices = 1;
  float* slice_scores = nullptr;
  int32_t* slice_ids = nullptr;

  int32_t* selected[kMaxSelectionLevels] = {};  // [Ns, Hkv, M_l], M_l = group * K_l
  int32_t* key_pos = nullptr;                   // [Ns, Hkv, R]
  // Elements from one (query, KV head) list of key_pos to the next, >= R; 0 = R (contiguous). A decode step
  // passes the tail of a wider [B, Hkv, R0 + R] list so the sparse decode kernel reads both in one list.
  int64_t key_pos_row_stride = 0;
};

Status chunk_selection_cuda(const ChunkSelectionParams& params, void* stream);
// CPU twin (float64 scores; the workspaces are unused).
Status chunk_selection_reference(const ChunkSelectionParams& params);

}  // namespace gsa::kernels
