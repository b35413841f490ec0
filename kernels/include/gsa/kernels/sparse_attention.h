// Block-sparse GSA attention over a tile plan: the training / prefill forward and backward kernels.
//
// The plan (built by gsa::TilePlan in runtime/) cuts the keys of each row, permuted into classes
// [sinks | top-level gists | level L-2 gists | ... | level-0 gists | other raw tokens] (each class padded to a
// multiple of kTileKeys), into key tiles of kTileKeys positions of one class, and the queries of each row twice:
// into query blocks of kBlockRows / group positions (the forward and dq passes walk, per block, the key tiles it
// may see) and into query tiles of kTileRows / group positions (a backward work item walks, for one key tile, a
// run of the query tiles that see it). Every allowed (query, key) pair lies in exactly one listed pair of tiles,
// and the mask rule (gist_mask.h, gist_mask_allows_class with the tile's class) is evaluated in the kernel for
// every pair unless the list entry carries kFullTile (every pair of the two tiles allowed). Nothing T x T is
// ever stored.
//
// Rows of a query block or tile pack the `group` query heads that share a KV head: row r is query head
// kv_head * group + r / (rows / group) at position start + r % (rows / group), so every K/V tile is loaded once
// for the whole group.
//
// Contract (forward): out[b, h, t] = sum_k softmax_k(scale * q[b, h, t] . k[b, h / group, k]) v[b, h / group, k]
// over the allowed keys, lse[b, h, t] = log sum_k exp(scale * q.k) in fp32 (-inf and out = 0 for a query with
// no allowed key). Backward: given d_out and d_lse (may be null: zero), dq, dk, dv of that function; the gist
// keys' gradients included. dk/dv are accumulated in fp32 workspaces (atomic adds where a key tile's queries are
// split over several work items; with one item per key tile the result is deterministic) and converted at the end.
// dq: with dq_accum null, written directly by a query-block pass (deterministic; it computes Q K^T and dO V^T a
// second time); with dq_accum given, accumulated by the key-tile pass itself (dS K, atomic adds into the fp32
// workspace: one pass over the tiles fewer, not bitwise reproducible) and converted at the end -- only where
// sparse_attention_backward_fuses_dq(); elsewhere dq_accum is not read. With a ds workspace (only where
// sparse_attention_backward_stored_ds() allows), the key-tile pass stores each visited pair's dS (as T, 8 KiB)
// and a query-tile pass takes dq = scale * sum dS K from it (deterministic; one product a pair where the
// query-block pass has three).
// Tensors: q, out, d_out, dq [B, Hq, Tq, D]; k, v, dk, dv [B, Hkv, kv_rows, D]; last dim contiguous, strides in
// elements, every row 16-byte aligned (the kernels move 16 bytes a thread); lse, d_lse, delta [B, Hq, Tq]
// contiguous fp32. Query rows hold positions [q_begin, q_begin + Tq).
// dtype: bf16 or fp16; D: 64 or 128; group: 1, 2, 4 or 8.
#pragma once

#include <cstdint>

#include "gsa/kernels/gist_mask.h"
#include "gsa/kernels/lse_merge.h"  // Status

namespace gsa::kernels {

constexpr int kBlockRows = 128;  // query rows (group heads x positions) per block of the forward and dq passes
constexpr int kTileRows = 64;    // query rows per query tile of the backward key-tile pass
constexpr int kTileKeys = 64;    // keys per key tile
constexpr int32_t kFullTile = int32_t(1) << 30;  // list-entry flag: every pair of the two tiles is allowed
constexpr int32_t kTileIdMask = kFullTile - 1;
// Entries of the paired backward lists: query tile id | kPairVisit << w if tile w (0, 1) of the item's pair sees the
// query tile | kPairFull << w if it sees it whole. The Hopper key pass runs the paired items by default for plans of
// at least kPairedKeyPassEntries visited (key tile, query tile) pairs: on an H200 (docs/PERFORMANCE.md, twenty-second
// session) they took forward+backward at 128K tokens (574K pairs) from 111.5 to 101.4 ms, and cost 3% at 32K (39K
// pairs) and 11% at 8K (3K pairs), where halving the CTAs costs more than the loads saved; the bound between is set
// at 2^17 pairs, and the twenty-third session measured both sides of it: at 64K tokens paired 29.2 ms against
// 31.1 per-tile, at 32K per-tile the faster.
constexpr int32_t kPairVisit = int32_t(1) << 26;
constexpr int32_t kPairFull = int32_t(1) << 28;
constexpr int32_t kPairTileMask = kPairVisit - 1;
constexpr int64_t kPairedKeyPassEntries = int64_t(1) << 17;

enum class DType { kBFloat16 = 0, kFloat16 = 1 };

// A backward list: work items, each a key tile (or a pair) and a run of the query tiles that see it.
struct BackwardListView {
  int32_t num_items = 0;
  int64_t num_entries = 0;               // visited (key tile, query tile) pairs (paired: merged entries)
  const int32_t* key_tiles = nullptr;    // [It] the item's key tile
  const int32_t* offsets = nullptr;      // [It + 1] into entries
  const int32_t* entries = nullptr;      // query tile id | kFullTile
  const int32_t* query_start = nullptr;  // [entries] query_tile_start of each entry's tile
  const int32_t* query_flags = nullptr;  // [entries] query_tile_flags of each entry's tile
  const int32_t* shared = nullptr;       // [It] 1 if the key tile has several items (atomic accumulation)
  // [entries] (paired: [entries * 2], tile w's at 2 e + w, -1 where it does not see the query tile): the entry's
  // pair's index in TilePlanView::query_tile_key_tiles, where the key pass stores its dS (SparseAttentionParams::ds).
  const int32_t* ds_slot = nullptr;
};

// The plan as device (or host, for the CPU twin) arrays. Int32 throughout.
struct TilePlanView {
  int32_t num_query_blocks = 0;
  const int32_t* query_block_row = nullptr;    // [Qb] batch row
  const int32_t* query_block_start = nullptr;  // [Qb] first position
  const int32_t* query_block_flags = nullptr;  // [Qb] kSuffixFlag if any query of the block has it
  const int32_t* forward_offsets = nullptr;    // [Qb + 1] into forward_key_tiles
  const int32_t* forward_key_tiles = nullptr;  // key tile id | kFullTile

  int32_t num_key_tiles = 0;
  const int32_t* key_tile_class = nullptr;     // [Kt] kClassRaw or the gist level (sinks: in the top level's)
  const int32_t* key_tile_positions = nullptr; // [Kt * kTileKeys] position in the row, -1 = padding
  const int32_t* key_tile_doc = nullptr;       // [Kt * kTileKeys] MaskKey fields of each key
  const int32_t* key_tile_chunk0 = nullptr;
  const int32_t* key_tile_chunk_up = nullptr;

  int32_t num_query_tiles = 0;
  const int32_t* query_tile_row = nullptr;     // [Qt]
  const int32_t* query_tile_start = nullptr;   // [Qt]
  const int32_t* query_tile_flags = nullptr;   // [Qt]
  // The backward lists' transpose: the key tiles each query tile visits (id | kFullTile), in visit order; a pair's
  // index here is its slot in the stored-dS workspace.
  int64_t num_tile_pairs = 0;
  const int32_t* query_tile_offsets = nullptr;    // [Qt + 1] into query_tile_key_tiles
  const int32_t* query_tile_key_tiles = nullptr;  // [num_tile_pairs]

  BackwardListView backward;        // one key tile an item
  // The same work with key tiles kt and kt + 1 of one row paired (the Hopper key pass's items, so a CTA loads each
  // query tile once for two key tiles): key_tiles [It * 2] (the second -1: none), the two tiles' lists merged,
  // entries with kPairVisit / kPairFull bits.
  BackwardListView backward_pairs;
};

struct SparseAttentionParams {
  DType dtype = DType::kBFloat16;
  int32_t batch = 0, q_heads = 0, kv_heads = 0, head_dim = 0;
  int32_t num_keys = 0;      // T: positions per row of k/v and of the metadata
  int32_t q_begin = 0;       // position of query row 0
  int32_t num_queries = 0;   // Tq
  const int32_t* row_query_end = nullptr;  // [B] one past the last valid query position of each row
  float scale = 1.f;
  GistMaskRule rule;
  const int32_t* token_meta = nullptr;     // [B, T, kTokenMetaInts]
  TilePlanView plan;
  // Keys held in k/v rows other than their positions (sequence parallelism: a rank holds some positions):
  // key_rows[i] is the k/v row of key slot i of the plan's key tiles, -1 for a key not held (its pairs are left
  // out). Null: row = position. kv_rows: rows of k/v, dk/dv and the dk/dv workspaces (T when key_rows is null).
  const int32_t* key_rows = nullptr;       // [Kt * kTileKeys]
  int32_t kv_rows = 0;

  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  int64_t q_stride[3] = {0, 0, 0};   // batch, head, row (elements); also out, d_out, dq
  int64_t kv_stride[3] = {0, 0, 0};  // also dk, dv
  void* out = nullptr;
  float* lse = nullptr;

  // Backward only.
  const void* d_out = nullptr;
  const float* d_lse = nullptr;      // may be null
  float* delta = nullptr;            // [B, Hq, Tq] workspace: rowsum(d_out * out) - d_lse
  void* dq = nullptr;
  void* dk = nullptr;
  void* dv = nullptr;
  float* dk_accum = nullptr;         // [B, Hkv, kv_rows, D] fp32 workspace, contiguous
  float* dv_accum = nullptr;
  float* dq_accum = nullptr;         // optional [B, Hq, Tq, D] fp32 workspace, contiguous (see the contract)
  // Optional [Hkv, num_tile_pairs, kTileKeys * kTileRows] workspace of T, only where
  // sparse_attention_backward_stored_ds() allows: the key pass stores every visited pair's dS there and dq is one
  // product a pair, dS K, instead of the query-block pass's recomputation (see the contract).
  void* ds = nullptr;
};

// CUDA: stream is a cudaStream_t. Backward zeroes and uses the fp32 workspaces itself.
Status sparse_attention_forward_cuda(const SparseAttentionParams& params, void* stream);
Status sparse_attention_backward_cuda(const SparseAttentionParams& params, void* stream);
// Whether sparse_attention_backward_cuda would use a dq_accum workspace: false where the Hopper key pass runs
// (it leaves dq to the dq pass) and in a build without CUDA, so callers allocate the workspace only when true.
bool sparse_attention_backward_fuses_dq();
// When sparse_attention_backward_cuda takes dq from stored dS tiles, i.e. uses a ds workspace (kv_heads x
// num_tile_pairs x 8 KiB: 38 GB at 128K tokens, 8 KV heads), so callers allocate it only then. With ds null it takes
// dq from the query-block pass.
//   kNever:       no Hopper key pass (other GPUs, a build without CUDA), or GSA_SM90_DQ=0 or 1.
//   kSmallPlans:  GSA_SM90_DQ unset: the caller gives a workspace only up to a size (sparse_attention.cpp: where
//                 storing dS was measured to cost less than the query-block pass's recomputation).
//   kAlways:      GSA_SM90_DQ=2: wherever the workspace fits in memory.
enum class StoredDs { kNever, kSmallPlans, kAlways };
StoredDs sparse_attention_backward_stored_ds();

// CPU reference twins over host pointers, same plan walk, float64 accumulation; the fp32 workspaces and ds are unused.
Status sparse_attention_forward_reference(const SparseAttentionParams& params);
Status sparse_attention_backward_reference(const SparseAttentionParams& params);

}  // namespace gsa::kernels
