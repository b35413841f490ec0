#include "gsa/runtime/selection.h"

#include <ATen/record_function.h>

#include <algorithm>
#include <limits>
#include <string>

#include "gsa/kernels/chunk_selection.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/kernel_choice.h"
#include "kernel_tensors.h"


namespace gsa {
namespace {

// Keys at (row, kv head, position) for broadcastable index tensors -> [..., D] fp32; key_slot (optional) maps
// positions to k's columns.
at::Tensor gather_keys(const at::Tensor& k, const at::Tensor& key_slot, const at::Tensor& rows,
                       const at::Tensor& heads, const at::Tensor& pos) {
  const at::Tensor column = key_slot.defined() ? key_slot.index({rows, pos}).clamp_min(0) : pos;
  return k.index({rows, heads, column}).to(at::kFloat);
}

// Top kk(q) of `scores` [Ns, Hkv, g, C] (-inf = not a candidate); returns the chosen candidate ids from
// `candidates` [Ns, Hkv, g, C] as [Ns, Hkv, g, K] with -1 where nothing was chosen. Equal scores: the lower gist
// first, the kernels' rule and their CPU twin's (the candidates in ascending gist order, then a stable sort by
// score; at::topk leaves the order of ties open, so a tie at the kk-th score could choose another gist).
at::Tensor top_k_per_head(const at::Tensor& scores, const at::Tensor& candidates, const at::Tensor& kk) {
  const int64_t width = scores.size(-1);
  const int64_t k_max = std::min<int64_t>(kk.max().item<int64_t>(), width);
  if (k_max <= 0) return at::full(candidates.sizes().vec(), -1, candidates.options()).narrow(-1, 0, 0);
  const at::Tensor by_gist = std::get<1>(at::sort(candidates, /*stable=*/true, -1, /*descending=*/false));
  const auto [sorted, by_score] = at::sort(at::gather(scores, -1, by_gist), /*stable=*/true, -1, /*descending=*/true);
  const at::Tensor values = sorted.narrow(-1, 0, k_max);
  const at::Tensor order = at::gather(by_gist, -1, by_score.narrow(-1, 0, k_max));
  at::Tensor rank = at::arange(k_max, kk.options()).view({1, 1, 1, k_max});
  at::Tensor keep = (rank < kk.view({-1, 1, 1, 1})).logical_and(at::isfinite(values));
  return at::gather(candidates, -1, order).masked_fill(keep.logical_not(), -1);
}

// Union over the heads of a group: [Ns, Hkv, g, K] -> [Ns, Hkv, g*K], ascending, duplicates -> -1.
at::Tensor group_union(const at::Tensor& chosen) {
  at::Tensor flat = std::get<0>(at::sort(chosen.flatten(2), -1));
  if (flat.size(-1) <= 1) return flat;
  at::Tensor dup = at::cat({at::zeros_like(flat.narrow(-1, 0, 1), flat.options().dtype(at::kBool)),
                            flat.narrow(-1, 1, flat.size(-1) - 1) == flat.narrow(-1, 0, flat.size(-1) - 1)},
                           -1);
  return flat.masked_fill(dup, -1);
}

// Looks up table [B, G] at (rows [Ns, 1, ...], idx [...]) with idx clamped; -1 idx -> fill.
at::Tensor lookup(const at::Tensor& table, const at::Tensor& rows, const at::Tensor& idx, int64_t fill) {
  at::Tensor safe = idx.clamp(0, std::max<int64_t>(table.size(1) - 1, 0));
  return table.index({rows, safe}).masked_fill(idx < 0, fill);
}

}  // namespace

int64_t adaptive_top_k(int64_t key_length, int64_t compression, int64_t gq, int64_t c0) {
  return key_length / compression / gq / c0 + 1;
}

int64_t compression_ratio(const GistOptions& gist) {
  int64_t r = gist.chunk;
  for (int64_t l = 1; l < gist.levels; ++l) r *= gist.fanout;
  return r;
}

namespace {

// Why the kernels cannot read keys through this slot table ("" when they can, or there is none).
std::string key_slot_unsupported(const at::Tensor& key_slot, const at::Device& keys_device) {
  if (!key_slot.defined()) return "";
  if (key_slot.scalar_type() != at::kLong || key_slot.dim() != 2 || key_slot.device() != keys_device) {
    return str_cat("the kernels take a key slot table as int64 [B, T] on the keys' device ", keys_device, ", not ",
                   key_slot.scalar_type(), " ", key_slot.sizes(), " on ", key_slot.device());
  }
  return "";
}

}  // namespace

std::string selection_kernels_unsupported(const at::Tensor& q, const at::Tensor& k, const at::Tensor& key_slot,
                                          const GistOptions& gist) {
  if (std::string why_not = key_slot_unsupported(key_slot, k.device()); !why_not.empty()) return why_not;
  if (q.scalar_type() != k.scalar_type() || (q.scalar_type() != at::kBFloat16 && q.scalar_type() != at::kHalf)) {
    return "the kernels take bf16 or fp16 q and k";
  }
  if (q.size(2) != 64 && q.size(2) != 128) return "the kernels take head dim 64 or 128";
  const int64_t g = q.size(1) / k.size(1);
  if (g != 1 && g != 2 && g != 4 && g != 8) return "the kernels pack 1, 2, 4 or 8 query heads per kv head";
  if (gist.levels > kernels::kMaxSelectionLevels) return "the kernels take 1 to 4 levels";
  if (q.device() != k.device()) return "q and k on different devices";
  return "";
}

ChunkSelection select_chunks(const at::Tensor& q, const at::Tensor& k, const AttentionPlan& plan,
                             const SelectionOptions& options, const at::Tensor& key_slot) {
  return select_chunks(q, k, plan.selection, plan.gist, options, key_slot, plan.backend);
}

namespace {

// The kernels' bound on the gists a head keeps at each level (K_l): the budget for the longest key length,
// at most a quarter of the level's widest row.
std::vector<int64_t> level_keep(int64_t group, const SelectionPlan& sel, const GistOptions& gist,
                                const SelectionOptions& options) {
  const int64_t T = sel.key_level.size(1);
  const int64_t budget = options.budget == BudgetKind::kFixed ? options.fixed_k
                                                              : T / compression_ratio(gist) / group / gist.chunk + 1;
  std::vector<int64_t> keep;
  for (int64_t l = 0; l < gist.levels; ++l) {
    keep.push_back(std::min(budget, std::max<int64_t>(1, sel.gist_pos[l].size(1) / 4)));
  }
  return keep;
}

}  // namespace

int64_t selection_key_slots(int64_t q_heads, int64_t kv_heads, const SelectionPlan& sel, const GistOptions& gist,
                            const SelectionOptions& options) {
  const int64_t g = q_heads / kv_heads;
  const std::vector<int64_t> keep = level_keep(g, sel, gist, options);
  int64_t slots = g * keep[0] * sel.max_chunk_span;
  for (int64_t kept : keep) slots += g * kept;
  return slots;
}

ChunkSelection select_chunks_rows(const at::Tensor& q_in, const kernels::KvRows& k, int64_t kv_heads,
                                  const SelectionPlan& sel, const GistOptions& gist, const SelectionOptions& options,
                                  const at::Tensor& covered, const at::Tensor& key_pos_out,
                                  const at::Tensor& key_slot) {
  at::NoGradGuard no_grad;
  const at::Tensor q = rows_for_16_byte_loads(q_in);
  const int64_t ns = q.size(0), hq = q.size(1), hkv = kv_heads, g = hq / hkv, L = gist.levels;
  const std::vector<int64_t> keep = level_keep(g, sel, gist, options);
  kernels::ChunkSelectionParams p;
  p.dtype = kernel_dtype(q);
  p.num_queries = static_cast<int32_t>(ns);
  p.q_heads = static_cast<int32_t>(hq);
  p.kv_heads = static_cast<int32_t>(hkv);
  p.head_dim = static_cast<int32_t>(q.size(2));
  p.levels = static_cast<int32_t>(L);
  p.q = q.data_ptr();
  p.q_stride[0] = q.stride(0);
  p.q_stride[1] = q.stride(1);
  p.k = k;
  const at::Tensor slots = key_slot.defined() ? key_slot.contiguous() : at::Tensor();
  if (slots.defined()) {
    const std::string why_not = key_slot_unsupported(slots, q.device());
    GSA_CHECK(why_not.empty(), "select_chunks_rows: ", why_not);
    p.key_slot = slots.data_ptr<int64_t>();
    p.key_slot_stride = slots.size(1);
  }
  const at::Tensor doc_gists = sel.doc_gists.contiguous();
  p.row = sel.row.data_ptr<int64_t>();
  p.key_length = sel.key_length.data_ptr<int64_t>();
  p.doc_gists = doc_gists.data_ptr<int64_t>();
  p.top_begin = sel.top_begin.data_ptr<int64_t>();
  p.fixed_k = options.budget == BudgetKind::kFixed ? options.fixed_k : 0;
  p.compression = compression_ratio(gist);
  p.chunk = gist.chunk;
  int64_t widest = 1, max_candidates = 1;
  for (int64_t l = L - 1; l >= 0; --l) {
    const int64_t width = sel.gist_pos[l].size(1);
    widest = std::max(widest, width);
    p.gist_pos[l] = sel.gist_pos[l].data_ptr<int64_t>();
    p.gist_stride[l] = width;
    if (l >= 1) {
      p.child_begin[l] = sel.child_begin[l].data_ptr<int64_t>();
      p.child_count[l] = sel.child_count[l].data_ptr<int64_t>();
      p.max_children[l] = static_cast<int32_t>(std::max<int64_t>(sel.max_children[l], 1));
    }
    p.keep[l] = static_cast<int32_t>(keep[l]);
    p.candidates[l] = static_cast<int32_t>(l == L - 1 ? sel.max_top : int64_t{p.keep[l + 1]} * p.max_children[l + 1]);
    max_candidates = std::max<int64_t>(max_candidates, p.candidates[l]);
  }
  GSA_CHECK(sel.chunk_begin.size(1) == sel.gist_pos[0].size(1), "selection tables: chunk_begin and level-0 gist ",
            "positions differ in width");
  p.chunk_begin = sel.chunk_begin.data_ptr<int64_t>();
  p.max_chunk_span = static_cast<int32_t>(sel.max_chunk_span);
  p.key_level = sel.key_level.data_ptr<int8_t>();
  p.key_level_stride = sel.key_level.stride(0);
  at::Tensor covered_bytes;
  if (covered.defined()) {
    covered_bytes = covered.to(at::kBool).contiguous();
    p.covered = reinterpret_cast<const uint8_t*>(covered_bytes.data_ptr<bool>());
    p.covered_stride = covered_bytes.size(1);
  }
  const auto ints = q.options().dtype(at::kInt);
  at::Tensor scores = at::empty({ns * hq * max_candidates}, q.options().dtype(at::kFloat));
  int64_t chosen_total = 0, rows = g * p.keep[0] * p.max_chunk_span;
  for (int64_t l = 0; l < L; ++l) {
    p.chosen_offset[l] = chosen_total;
    chosen_total += ns * hq * p.keep[l];
    rows += g * p.keep[l];
  }
  at::Tensor chosen = at::empty({chosen_total}, ints);
  p.bitmap_words = (widest + 31) / 32;
  at::Tensor bitmap = at::empty({L * ns * hkv * p.bitmap_words}, ints);
  ChunkSelection result;
  for (int64_t l = 0; l < L; ++l) {
    result.selected.push_back(at::empty({ns, hkv, g * p.keep[l]}, ints));
    p.selected[l] = result.selected.back().data_ptr<int32_t>();
  }
  if (key_pos_out.defined()) {
    GSA_CHECK(key_pos_out.scalar_type() == at::kInt && key_pos_out.device() == q.device() &&
                  key_pos_out.sizes() == at::IntArrayRef({ns, hkv, rows}) && key_pos_out.stride(2) == 1 &&
                  key_pos_out.stride(0) == hkv * key_pos_out.stride(1),
              "select_chunks_rows: key_pos_out ", key_pos_out.sizes(), " ", key_pos_out.scalar_type(), " strides ",
              key_pos_out.strides(), " is not an int32 [", ns, ", ", hkv, ", ", rows, "] list on ", q.device(),
              " with contiguous rows");
    result.key_pos = key_pos_out;
    p.key_pos_row_stride = key_pos_out.stride(1);
  } else {
    result.key_pos = at::empty({ns, hkv, rows}, ints);
  }
  // A long top level (decode at 1M tokens: 65K gists per head) takes the kernels' two-stage top-k over slices of
  // about 8K candidates, where the slices' survivors are at most half the candidates.
  at::Tensor slice_scores, slice_ids;
  if (q.is_cuda()) {
    constexpr int64_t kSliceCandidates = 8192;
    const int64_t top_candidates = p.candidates[L - 1], top_keep = p.keep[L - 1];
    const int64_t slices = std::min<int64_t>(top_candidates / kSliceCandidates, 32);
    if (slices >= 2 && 2 * slices * top_keep <= top_candidates) {
      p.top_slices = static_cast<int32_t>(slices);
      slice_scores = at::empty({ns * hq * slices * top_keep}, q.options().dtype(at::kFloat));
      slice_ids = at::empty({ns * hq * slices * top_keep}, ints);
      p.slice_scores = slice_scores.data_ptr<float>();
      p.slice_ids = slice_ids.data_ptr<int32_t>();
    }
  }
  p.scores = scores.data_ptr<float>();
  p.chosen = chosen.data_ptr<int32_t>();
  p.bitmap = reinterpret_cast<uint32_t*>(bitmap.data_ptr<int32_t>());
  p.key_pos = result.key_pos.data_ptr<int32_t>();
  const kernels::Status status = run_kernel(
      q.device(), [&](void* stream) { return kernels::chunk_selection_cuda(p, stream); },
      [&] { return kernels::chunk_selection_reference(p); });
  GSA_CHECK(status == kernels::Status::kOk, "chunk selection failed on ", q.device(), " for q ", q.sizes(), ": ",
            kernels::status_string(status));
  return result;  // int32, as the kernels write them
}

ChunkSelection select_chunks(const at::Tensor& q, const at::Tensor& k, const SelectionPlan& sel,
                             const GistOptions& gist, const SelectionOptions& options, const at::Tensor& key_slot,
                             AttentionBackend backend, const at::Tensor& covered) {
  RECORD_FUNCTION("gsa::select_chunks", std::vector<c10::IValue>());
  at::NoGradGuard no_grad;
  if (sel.count > 0 &&
      use_kernel_backend(backend, q.is_cuda(), selection_kernels_unsupported(q, k, key_slot, gist),
                         str_cat("select chunks for q ", q.sizes(), " ", q.scalar_type()))) {
    const at::Tensor keys = rows_for_16_byte_loads(k);
    ChunkSelection chosen =
        select_chunks_rows(q, kv_rows_of(keys), keys.size(1), sel, gist, options, covered, at::Tensor(), key_slot);
    for (at::Tensor& t : chosen.selected) t = t.to(at::kLong);
    chosen.key_pos = chosen.key_pos.to(at::kLong);
    return chosen;
  }
  ChunkSelection chosen = select_chunks_reference(q, k, sel, gist, options, key_slot);
  if (covered.defined()) {
    const at::Tensor listed = covered.index({sel.row.view({-1, 1, 1}), chosen.key_pos.clamp(0, covered.size(1) - 1)});
    chosen.key_pos = chosen.key_pos.masked_fill(listed, -1);
  }
  return chosen;
}

ChunkSelection select_chunks_into(const at::Tensor& q, const at::Tensor& k, const SelectionPlan& sel,
                                  const GistOptions& gist, const SelectionOptions& options, const at::Tensor& key_slot,
                                  const at::Tensor& covered, const at::Tensor& key_pos_out) {
  const std::string why_not = selection_kernels_unsupported(q, k, key_slot, gist);
  GSA_CHECK(why_not.empty(), "select_chunks_into: ", why_not);
  const at::Tensor keys = rows_for_16_byte_loads(k);
  return select_chunks_rows(q, kv_rows_of(keys), keys.size(1), sel, gist, options, covered, key_pos_out, key_slot);
}

ChunkSelection select_chunks_reference(const at::Tensor& q, const at::Tensor& k, const SelectionPlan& sel,
                                       const GistOptions& gist, const SelectionOptions& options,
                                       const at::Tensor& key_slot) {
  at::NoGradGuard no_grad;
  const int64_t ns = q.size(0), hq = q.size(1), dim = q.size(2), hkv = k.size(1);
  GSA_CHECK(ns == sel.count, "select_chunks: ", ns, " queries for ", sel.count, " selective slots");
  GSA_CHECK(hq % hkv == 0, "query heads ", hq, " not a multiple of kv heads ", hkv);
  const int64_t g = hq / hkv, L = gist.levels;
  const auto long_opts = sel.row.options();
  const at::Tensor qg = q.reshape({ns, hkv, g, dim}).to(at::kFloat);            // [Ns, Hkv, g, D]
  const at::Tensor rows = sel.row.view({ns, 1, 1, 1});
  const at::Tensor heads = at::arange(hkv, long_opts).view({1, hkv, 1, 1});

  // Budget per query and level: [Ns, L].
  at::Tensor budget;
  if (options.budget == BudgetKind::kAdaptive) {
    const int64_t r = compression_ratio(gist);
    budget = sel.key_length.div(r, "floor").div(g, "floor").div(gist.chunk, "floor") + 1;
  } else {
    budget = at::full({ns}, options.fixed_k, long_opts);
  }
  at::Tensor per_level = at::minimum(budget.view({ns, 1}), sel.doc_gists.div(4, "floor").clamp_min(1));

  std::vector<at::Tensor> chosen(L);  // [Ns, Hkv, g, K_l] per head
  const float neg_inf = -std::numeric_limits<float>::infinity();
  for (int64_t l = L - 1; l >= 0; --l) {
    at::Tensor candidates, valid;  // [Ns, Hkv, g, C]
    if (l == L - 1) {
      at::Tensor offsets = at::arange(std::max<int64_t>(sel.max_top, 1), long_opts);
      candidates = (sel.top_begin.view({ns, 1}) + offsets).view({ns, 1, 1, -1}).expand({ns, hkv, g, offsets.size(0)});
      valid = (offsets.view({1, -1}) < sel.doc_gists.select(1, l).view({ns, 1})).view({ns, 1, 1, -1})
                  .expand_as(candidates);
    } else {
      const at::Tensor& parents = chosen[l + 1];                                  // [Ns, Hkv, g, Kp]
      const int64_t width = std::max<int64_t>(sel.max_children[l + 1], 1);
      at::Tensor begin = lookup(sel.child_begin[l + 1], rows, parents, 0);
      at::Tensor count = lookup(sel.child_count[l + 1], rows, parents, 0);
      at::Tensor offsets = at::arange(width, long_opts);
      candidates = (begin.unsqueeze(-1) + offsets).flatten(3);                    // [Ns, Hkv, g, Kp*C]
      valid = (offsets < count.unsqueeze(-1)).flatten(3);
    }
    candidates = candidates.masked_fill(valid.logical_not(), -1).contiguous();
    at::Tensor pos = lookup(sel.gist_pos[l], rows, candidates, 0);                 // [Ns, Hkv, g, C]
    at::Tensor keys = gather_keys(k, key_slot, rows, heads, pos);                           // [Ns, Hkv, g, C, D]
    at::Tensor scores = at::matmul(keys, qg.unsqueeze(-1)).squeeze(-1);          // [Ns, Hkv, g, C]
    scores = scores.masked_fill(candidates < 0, neg_inf);
    chosen[l] = top_k_per_head(scores, candidates, per_level.select(1, l).contiguous());
  }

  // Union over each group's heads, then the keys to unfold.
  ChunkSelection result;
  std::vector<at::Tensor> key_lists;
  const at::Tensor rows3 = sel.row.view({ns, 1, 1});
  for (int64_t l = 0; l < L; ++l) {
    at::Tensor unique = group_union(chosen[l]);                                   // [Ns, Hkv, M_l]
    result.selected.push_back(unique);
    key_lists.push_back(lookup(sel.gist_pos[l], rows3, unique, -1));
  }
  {
    const at::Tensor& chunks = result.selected[0];                                // [Ns, Hkv, M]
    const int64_t span = std::max<int64_t>(sel.max_chunk_span, 1);
    at::Tensor begin = lookup(sel.chunk_begin, rows3, chunks, 0);
    at::Tensor end = lookup(sel.gist_pos[0], rows3, chunks, -1);                  // the closing gist
    at::Tensor raw = begin.unsqueeze(-1) + at::arange(span, long_opts);           // [Ns, Hkv, M, S]
    at::Tensor in_chunk = raw < end.unsqueeze(-1);
    at::Tensor safe = raw.clamp_max(sel.key_level.size(1) - 1);
    at::Tensor level = sel.key_level.index({sel.row.view({ns, 1, 1, 1}), safe});
    raw = raw.masked_fill(in_chunk.logical_and(level < 0).logical_not(), -1);
    key_lists.insert(key_lists.begin(), raw.flatten(2));
  }
  result.key_pos = at::cat(key_lists, -1);                                        // [Ns, Hkv, R]
  return result;
}

}  // namespace gsa
