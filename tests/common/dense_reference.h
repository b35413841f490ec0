// The float64 dense oracle for GSA attention (tests only: it builds T x T masks).
//
// Independent of the efficient path: the mask comes from the scalar predicate gist_mask_allowed() evaluated
// for every (q, k) pair, and selection is brute force (score every gist of the document, sort, keep the top kk;
// children found by scanning every lower-level gist for a chosen parent), in float64.
#pragma once

#include <set>
#include <vector>

#include <ATen/ATen.h>

#include "gsa/config/options.h"
#include "gsa/runtime/gist_layout.h"

namespace gsa::test {

// Brute-force selection for one query position of `row`: per level, the gist indices (row-wide) chosen by any
// head of KV group `group`. q: [Hq, D] this query's heads; k: [Hkv, T, D]. Scores in float64; among equal scores
// the lower gist first (the selection's rule), or with ties_to_higher the higher (a test's check that its ties
// decide something).
std::vector<std::set<int64_t>> brute_force_selection(const GistLayout& row, int64_t pos, const at::Tensor& q,
                                                     const at::Tensor& k, int64_t group,
                                                     const SelectionOptions& options, bool ties_to_higher = false);

// Dense keep mask [Hkv, Tq, T] (bool) for queries [q_begin, q_begin + Tq) of one row. q: [Hq, Tq, D] and
// k: [Hkv, T, D] are only read in selective mode (selection scores).
at::Tensor dense_keep_mask(const GistLayout& row, int64_t q_begin, int64_t num_queries, const at::Tensor& q,
                           const at::Tensor& k, bool selective, const SelectionOptions& options);

// Float64 softmax attention of one row under keep [Hkv, Tq, T]: q [Hq, Tq, D], k, v [Hkv, T, D] -> [Hq, Tq, D].
at::Tensor dense_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& keep,
                           double scale);

}  // namespace gsa::test
