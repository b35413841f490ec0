// The CSV schema of the scaling experiments: one row per (point, rank). gsa bench step writes the rank columns
// (kRankColumns, one row per rank of its job); gsa experiment scale prefixes each row with the point columns
// (kPointColumns) into <out>/results.csv; scripts/plot_results.py and scripts/cost_model.py read them by name.
//
// Rank columns (times in ms per timed unit, the mean over the repeats; the unit is one training step, or for
// serve one decode token):
//   mode            train | serve
//   ranks, backend  the sp group (all ranks of the job), mpi | nccl
//   placement       sections (even positions, cut at top-level sections) | work (shard_by_work,
//                   placement_work_model)
//   tokens, batch   raw tokens per row (context + suffix, before gists), rows per step
//   rank            this rank
//   local_tokens    positions of this rank's shard (gists included)
//   owned_gists     gists (all levels) in this rank's shard
//   tree_rows       replicated keys (gists + sinks) of the whole row: what the gist-tree all-gather assembles
//   halo_rows       positions this rank receives as halo
//   work            estimated FLOP work of the shard (sequence_shard.h position_work, work_model_of)
//   step_ms         wall time of the unit on this rank (barrier before each)
//   ttft_ms         serve: prefill of the prompt to the first logits (time to first token); train: empty
//   attention_ms .. decode_merge_ms   the phase timers (gsa/parallel/phase_timers.h)
//   comm_ms         gist_tree + halo + routing + grad_allreduce + decode_merge: communication the rank waited
//                   for (exposed; the gradient all-reduce hidden under backward is not in it)
//   busy_ms         step_ms - comm_ms: compute (attention and the rest of the model, backward, optimizer-free)
//   other_ms        busy_ms - attention_ms
//   idle_ms         max over ranks of busy_ms - busy_ms: the wait this rank spends inside collectives for the
//                   slowest rank (imbalance)
//   imbalance       max busy_ms / mean busy_ms over the ranks of the point (1 = balanced)
//   peak_mib        peak allocated memory of the rank during the timed units
//   grad_bytes      bytes of the gradient all-reduce per step (train; 0 for serve)
//   kv_row_bytes    bytes of one position's K and V over the KV heads of one layer
//   merge_bytes     bytes one rank contributes to a decode step's merge per layer (Hq x (D + 1) fp32)
//   layers, repeats model layers, timed repeats
#pragma once

namespace gsa::cli {

inline constexpr const char* kRankColumns =
    "mode,ranks,backend,placement,tokens,batch,rank,local_tokens,owned_gists,tree_rows,halo_rows,work,step_ms,"
    "ttft_ms,attention_ms,gist_tree_ms,halo_ms,routing_ms,grad_allreduce_ms,decode_merge_ms,comm_ms,busy_ms,"
    "other_ms,idle_ms,imbalance,peak_mib,grad_bytes,kv_row_bytes,merge_bytes,layers,repeats";

// point: the point's id (its folder under <out>/points); series: the spec series' name; kind: strong | weak |
// serve.
inline constexpr const char* kPointColumns = "point,series,kind";

}  // namespace gsa::cli
