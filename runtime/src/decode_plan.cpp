#include "gsa/runtime/decode_plan.h"

#include <algorithm>

#include "gsa/kernels/gist_mask.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/mask_predicate.h"
#include "padded_rows.h"

namespace gsa {

DecodePlan::DecodePlan(const std::vector<const GistLayout*>& rows, const AttentionOptions& options, at::Device device)
    : device_(device) {
  GSA_CHECK(!rows.empty(), "a decode plan needs at least one sequence");
  gist_ = rows[0]->options;
  kernels::GistMaskRule rule;
  rule.levels = static_cast<int32_t>(gist_.levels);
  rule.prev_chunks = static_cast<int32_t>(gist_.prev_chunks);
  rule.keep_unselected_gists = options.selection.keep_unselected_gists ? 1 : 0;
  std::vector<std::vector<int32_t>> lists[2];
  int64_t longest_prompt = 1;
  for (size_t b = 0; b < rows.size(); ++b) {
    const GistLayout& r = *rows[b];
    GSA_CHECK(r.levels() == gist_.levels && r.options.prev_chunks == gist_.prev_chunks && r.options.sink == gist_.sink,
              "all sequences of a decode batch need the same gist options");
    const int64_t q = r.size() - 1;
    GSA_CHECK(q >= 0 && r.level[q] == kRawLevel && r.suffix[q], "decode plan: sequence ", b,
              " must end with its first decode token, a raw suffix token (GistLayout::append_raw)");
    int32_t q_meta[kernels::kTokenMetaInts], k_meta[kernels::kTokenMetaInts];
    pack_token_meta(r, q, q_meta);
    for (int selective = 0; selective < 2; ++selective) lists[selective].emplace_back();
    for (int64_t k = 0; k < q; ++k) {
      pack_token_meta(r, k, k_meta);
      for (int selective = 0; selective < 2; ++selective) {
        rule.selective = selective;
        if (kernels::gist_mask_allows(q, q_meta, k, k_meta, rule)) lists[selective].back().push_back(int32_t(k));
      }
    }
    token_.push_back(r.tokens[q]);
    position_.push_back(q);
    rope_.push_back(r.rope_pos[q]);
    first_.push_back(q);
    longest_prompt = std::max(longest_prompt, q);
  }
  for (int selective = 0; selective < 2; ++selective) {
    prompt_rows_[selective] = pad_rows(lists[selective], -1, at::kInt).to(device);
  }
  at::Tensor covered = at::zeros({batch(), longest_prompt}, at::kBool);
  bool* held = covered.data_ptr<bool>();
  for (int64_t b = 0; b < batch(); ++b) {
    for (int32_t k : lists[1][b]) held[b * longest_prompt + k] = true;
  }
  selective_covered_ = covered.to(device);
  std::vector<std::pair<int64_t, int64_t>> queries;
  for (int64_t q : position_) queries.push_back({q, q + 1});
  selection_ = make_selection_plan(rows, queries, device);
  upload();
}

void DecodePlan::advance(const std::vector<int64_t>& tokens) {
  advance_host(tokens);
  move_selection(1);
  upload();
}

void DecodePlan::advance_host(const std::vector<int64_t>& tokens) {
  GSA_CHECK(static_cast<int64_t>(tokens.size()) == batch(), "decode plan: ", tokens.size(), " tokens for ", batch(),
            " sequences");
  for (int64_t b = 0; b < batch(); ++b) {
    token_[b] = tokens[b];
    ++position_[b];
    ++rope_[b];
  }
}

void DecodePlan::advance_on_device(const at::Tensor& next) {
  GSA_CHECK(next.dim() == 1 && next.size(0) == batch() && next.scalar_type() == at::kLong &&
                next.device() == device_longs_.device(),
            "decode plan: the next tokens must be [", batch(), "] int64 on ", device_longs_.device());
  device_longs_[0].copy_(next);
  device_longs_.narrow(0, 1, 2).add_(1);  // RoPE and row positions
  device_ints_[1].add_(1);                // one past the last generated row
  ++generated_.max_rows;  // the host bound the CPU reference sizes its rows by (CUDA kernels read end itself)
  move_selection(1);
}

void DecodePlan::rewind_device(int64_t steps) {
  GSA_CHECK(steps >= 0, "decode plan: cannot rewind ", steps, " steps");
  if (steps > 0) move_selection(-steps);
  upload();
}

void DecodePlan::move_selection(int64_t steps) {
  if (selection_.count == 0) return;
  selection_.pos.add_(steps);  // every selective query moved on in its document
  selection_.key_length.add_(steps);
}

DecodePlan DecodePlan::stack(const std::vector<const DecodePlan*>& parts) {
  GSA_CHECK(!parts.empty(), "stacking decode plans needs at least one");
  DecodePlan out(parts[0]->device_);
  out.gist_ = parts[0]->gist_;
  std::vector<at::Tensor> rows[2], covered;
  std::vector<const SelectionPlan*> selections;
  std::vector<int64_t> sizes;
  for (const DecodePlan* p : parts) {
    const GistOptions& g = p->gist_;
    GSA_CHECK(g.levels == out.gist_.levels && g.chunk == out.gist_.chunk && g.fanout == out.gist_.fanout &&
                  g.sink == out.gist_.sink && g.prev_chunks == out.gist_.prev_chunks && p->device_ == out.device_,
              "stacked decode plans need the same gist options and device");
    using Field = std::vector<int64_t> DecodePlan::*;
    for (Field field : {&DecodePlan::token_, &DecodePlan::position_, &DecodePlan::rope_, &DecodePlan::first_}) {
      (out.*field).insert((out.*field).end(), (p->*field).begin(), (p->*field).end());
    }
    for (int selective = 0; selective < 2; ++selective) rows[selective].push_back(p->prompt_rows_[selective]);
    covered.push_back(p->selective_covered_);
    selections.push_back(&p->selection_);
    sizes.push_back(p->batch());
  }
  for (int selective = 0; selective < 2; ++selective) out.prompt_rows_[selective] = stack_padded(rows[selective], -1);
  out.selective_covered_ = stack_padded(covered, 0);
  out.selection_ = stack_selection_plans(selections, sizes, out.gist_.levels, out.device_);
  out.upload();
  return out;
}

void DecodePlan::upload() {
  const int64_t B = batch();
  // Pinned host rows for a CUDA plan, so the upload does not wait for the device (a copy from pageable memory
  // synchronises the stream: two waits a decode step); the caching host allocator keeps each block until its copy
  // has run.
  const bool pinned = device_.is_cuda();
  at::Tensor longs = at::empty({3, B}, at::TensorOptions(at::kLong).pinned_memory(pinned));
  at::Tensor ints = at::empty({2, B}, at::TensorOptions(at::kInt).pinned_memory(pinned));
  int64_t* l = longs.data_ptr<int64_t>();
  int32_t* i = ints.data_ptr<int32_t>();
  int64_t longest = 0;
  for (int64_t b = 0; b < B; ++b) {
    l[b] = token_[b];
    l[B + b] = rope_[b];
    l[2 * B + b] = position_[b];
    i[b] = static_cast<int32_t>(first_[b]);
    i[B + b] = static_cast<int32_t>(position_[b] + 1);
    longest = std::max(longest, position_[b] + 1 - first_[b]);
  }
  // Written in place once the device tensors exist, so their storage stays put from step to step (a captured
  // decode graph, decode_graph.h, reads them).
  if (!device_longs_.defined() || device_longs_.size(1) != B) {
    device_longs_ = longs.to(device_, /*non_blocking=*/pinned);
    device_ints_ = ints.to(device_, /*non_blocking=*/pinned);
  } else {
    device_longs_.copy_(longs, /*non_blocking=*/pinned);
    device_ints_.copy_(ints, /*non_blocking=*/pinned);
  }
  tokens_ = device_longs_[0].view({B, 1});
  rope_pos_ = device_longs_[1].view({B, 1});
  positions_ = device_longs_[2];
  generated_ = DecodeRange{device_ints_[0], device_ints_[1], longest};
}

}  // namespace gsa
