// Tables for chunk selection (selection.h) of a set of selective queries: per query its document's top-level
// gist range and budget inputs, per row the gist positions of every level, each gist's children and each
// level-0 chunk's raw span. Built on the host once per plan, read on the device by select_chunks.
//
// Contract: make_selection_plan takes, per row, a range of query positions; the selective queries are those
// with the suffix flag whose document has at least one top-level gist (the others select nothing), in row
// order then position order. The per-row tables cover the whole row, so a decode plan builds them once and only
// moves each query's position and key length as tokens are appended (no gists are added after the prompt).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "gsa/runtime/gist_layout.h"

namespace gsa {

struct SelectionPlan {
  int64_t count = 0;                    // Ns selective queries in the plan
  at::Tensor row;                       // [Ns] batch row
  at::Tensor pos;                       // [Ns] position in the row
  at::Tensor slot;                      // [Ns] attention plans: row * padded_queries + (pos - q_begin)
  at::Tensor key_length;                // [Ns] Lk: keys the query can see in its document (pos_in_doc + 1)
  at::Tensor doc_gists;                 // [Ns, L] gists of each level in the query's document
  at::Tensor top_begin;                 // [Ns] first top-level gist index of the document
  int64_t max_top = 0;                  // most top-level gists of any selective query's document
  std::vector<at::Tensor> gist_pos;     // [L] of [B, G_l] positions of the level-l gists; -1 pad
  std::vector<at::Tensor> child_begin;  // [L] of [B, G_l] (l >= 1) first level-(l-1) child index
  std::vector<at::Tensor> child_count;  // [L] of [B, G_l] (l >= 1) number of children
  std::vector<int64_t> max_children;    // [L] (l >= 1) largest child_count
  at::Tensor chunk_begin;               // [B, G_0] first position of level-0 chunk j
  int64_t max_chunk_span = 0;           // largest gist_pos0[j] - chunk_begin[j]
  at::Tensor key_level;                 // [B, T] int8 level of every position (-1 raw; T the longest row)
};

// query_ranges[b] = [begin, end) positions of row b that may be selective queries (clipped to the row).
SelectionPlan make_selection_plan(const std::vector<const GistLayout*>& rows,
                                  const std::vector<std::pair<int64_t, int64_t>>& query_ranges, at::Device device);

// Plans of consecutive groups of rows as one plan (rows[i] rows in part i, in order; queries keep their order with
// their rows renumbered); per-row tables padded to the widest part; O(total table size) device copies. levels:
// the rows' gist levels (parts without selective queries carry no tables).
SelectionPlan stack_selection_plans(const std::vector<const SelectionPlan*>& parts, const std::vector<int64_t>& rows,
                                    int64_t levels, at::Device device);

}  // namespace gsa
