// Private to gsa_kernels: argument checks shared by the CUDA kernels and their CPU twins, and the launchers
// that the forward and backward entry points share.
#pragma once

#include "gsa/kernels/sparse_attention.h"

namespace gsa::kernels::detail {

// A backward list with items has every array.
inline bool backward_list_usable(const BackwardListView& l) {
  return l.num_items <= 0 ||
         (l.key_tiles && l.offsets && l.entries && l.query_start && l.query_flags && l.shared);
}

// kInvalidArgument unless the shapes, dtype, head dim, group and plan pointers are usable.
inline Status check_sparse_attention_params(const SparseAttentionParams& p, bool backward) {
  if (p.batch < 1 || p.kv_heads < 1 || p.q_heads < p.kv_heads || p.q_heads % p.kv_heads != 0) {
    return Status::kInvalidArgument;
  }
  const int group = p.q_heads / p.kv_heads;
  if (group != 1 && group != 2 && group != 4 && group != 8) return Status::kInvalidArgument;
  if (p.head_dim != 64 && p.head_dim != 128) return Status::kInvalidArgument;
  if (p.num_keys < 1 || p.num_queries < 1 || p.q_begin < 0 || p.q_begin + p.num_queries > p.num_keys) {
    return Status::kInvalidArgument;
  }
  if (p.kv_rows < 1 || (p.key_rows == nullptr && p.kv_rows != p.num_keys)) return Status::kInvalidArgument;
  if (p.rule.levels < 1 || p.rule.levels > kMaxGistLevels || p.rule.prev_chunks < 0) return Status::kInvalidArgument;
  if (!p.q || !p.k || !p.v || !p.out || !p.lse || !p.token_meta || !p.row_query_end) return Status::kInvalidArgument;
  const TilePlanView& t = p.plan;
  if (t.num_query_tiles < 0 || t.num_key_tiles < 0 || t.backward.num_items < 0 || t.backward_pairs.num_items < 0) {
    return Status::kInvalidArgument;
  }
  if (t.num_query_blocks > 0 && (!t.query_block_row || !t.query_block_start || !t.query_block_flags ||
                                 !t.forward_offsets || !t.key_tile_class || !t.key_tile_positions ||
                                 !t.key_tile_doc || !t.key_tile_chunk0 || !t.key_tile_chunk_up)) {
    return Status::kInvalidArgument;
  }
  if (backward) {
    if (!p.d_out || !p.delta || !p.dq || !p.dk || !p.dv || !p.dk_accum || !p.dv_accum) return Status::kInvalidArgument;
    const bool any_items = t.backward.num_items > 0 || t.backward_pairs.num_items > 0;
    if (!backward_list_usable(t.backward) || !backward_list_usable(t.backward_pairs) ||
        (any_items && (!t.query_tile_row || !t.query_tile_start || !t.query_tile_flags))) {
      return Status::kInvalidArgument;
    }
    // A stored-dS workspace needs every entry's slot and the query tiles' lists.
    if (p.ds != nullptr && (t.num_tile_pairs < 0 || (t.num_query_tiles > 0 && !t.query_tile_offsets) ||
                            (t.num_tile_pairs > 0 && !t.query_tile_key_tiles) ||
                            (t.backward.num_items > 0 && !t.backward.ds_slot) ||
                            (t.backward_pairs.num_items > 0 && !t.backward_pairs.ds_slot))) {
      return Status::kInvalidArgument;
    }
  }
  return Status::kOk;
}

// Whether the Hopper kernels can run: the current device (at the first call) has compute capability 9.0 and the
// build is for sm_90a.
bool hopper_kernels_available();
// Whether the forward runs the Hopper kernel (sparse_attention_forward_sm90.cu): where hopper_kernels_available(),
// unless GSA_SM90_FORWARD=0 in the environment (read once).
bool forward_sm90_enabled();
Status launch_forward_sm90(const SparseAttentionParams& p, void* stream);

// Whether the backward's key pass runs the Hopper kernel (sparse_attention_key_pass_sm90.cu): where
// hopper_kernels_available(), unless GSA_SM90_BACKWARD (read once) is 0 (the mma.sync key pass); 1 or 2 run it
// over the plan's per-tile items with that many consumer warpgroups, 3 over its paired items (two key tiles a CTA);
// unset: paired for plans of at least kPairedKeyPassEntries entries, else per-tile with two consumers.
bool key_pass_sm90_enabled();
// dK and dV into the fp32 workspaces (zeroed by the caller) by the Hopper key pass; dq is not touched.
Status launch_key_pass_sm90(const SparseAttentionParams& p, void* stream);

// Whether the backward's dq pass runs the Hopper kernel (sparse_attention_dq_sm90.cu): where
// hopper_kernels_available(), unless GSA_SM90_DQ=0 (read once).
bool dq_sm90_enabled();
// dq (as T, times the scale) by the Hopper dq pass; lse and delta must be filled.
Status launch_dq_sm90(const SparseAttentionParams& p, void* stream);

// When the backward takes dq from stored dS tiles (sparse_attention_dq_ds_sm90.cu) given a ds workspace, where
// key_pass_sm90_enabled(): GSA_SM90_DQ (read once) unset kSmallPlans, 2 kAlways, else kNever
// (sparse_attention_backward_stored_ds's contract).
StoredDs dq_stored_ds_mode();
// dq (as T, times the scale) from the dS tiles the Hopper key pass stored in p.ds; run after it.
Status launch_dq_ds_sm90(const SparseAttentionParams& p, void* stream);

// Query-block pass: the forward (out, lse) or, with backward = true, dq from d_out, lse and delta.
Status launch_query_pass(const SparseAttentionParams& p, bool backward, void* stream);

}  // namespace gsa::kernels::detail
