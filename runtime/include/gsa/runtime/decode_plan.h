// The incremental plan of batched decode: B sequences past their prefill, each with one raw suffix query per
// step (the token just generated), possibly of different lengths and documents. What attention needs for those
// queries, kept so that a step costs O(B) host work instead of a pass over the layouts (attention_plan.h's plan
// is rebuilt per forward):
//   - per sequence, the prompt rows its query sees through the mask (sink, the gists the rule allows, the local
//     window), one list for ordinary layers and one for layers where suffix queries select (gists then come from
//     selection only, unless keep_unselected_gists), built once by evaluating the one mask rule
//     (kernels/gist_mask.h) against every prompt position;
//   - the generated tokens as one contiguous row range [first decode position, query position] (a decode query
//     is a raw suffix token with the chunk ids of the row's end, so it sees the prompt rows above plus every
//     generated token, and the next one sees the same plus itself);
//   - chunk selection tables (selection_plan.h) of the sequences whose document has gists, whose only moving parts
//     are the query position and key length;
//   - which prompt rows the selective list already holds, so that selected keys are not attended twice.
//
// Contract: the rows given to the constructor end with each sequence's first decode token (appended with
// GistLayout::append_raw, whose K/V the step writes into cache row b at position positions()[b]); advance()
// moves every sequence to its next token, writing the device tensors in place (their storage never moves, so a
// captured CUDA graph of a step stays valid; decode_graph.h). Not thread-safe.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "gsa/config/options.h"
#include "gsa/runtime/gist_layout.h"
#include "gsa/runtime/selection_plan.h"
#include "gsa/runtime/sparse_decode.h"

namespace gsa {

class DecodePlan {
 public:
  // O(T) host work per row, once.
  DecodePlan(const std::vector<const GistLayout*>& rows, const AttentionOptions& options, at::Device device);

  // The next token of every sequence (tokens.size() == batch()): O(B) host work and one small copy to the device.
  void advance(const std::vector<int64_t>& tokens);
  // advance() split in two for a decode loop that runs ahead of the host (generation_ahead.cpp):
  // - advance_on_device(next) moves every sequence to its next token [B] int64 (on the plan's device) with device
  //   operations only: no host value changes and nothing waits, so a captured decode step may end with it;
  // - advance_host(tokens) moves the host copies only (the token's position, RoPE position and id);
  // - rewind_device(steps) takes back `steps` device advances the host did not follow (a loop that ran past its
  //   end) and rewrites the device tensors from the host copies: afterwards the plan is as advance() leaves it.
  void advance_on_device(const at::Tensor& next);
  void advance_host(const std::vector<int64_t>& tokens);
  void rewind_device(int64_t steps);
  // Several plans as one batch, their sequences in order (a server's continuous batch of per-request plans); the
  // parts keep working on their own. O(total rows) device copies, no pass over the layouts.
  static DecodePlan stack(const std::vector<const DecodePlan*>& parts);

  int64_t batch() const { return static_cast<int64_t>(position_.size()); }
  const GistOptions& gist() const { return gist_; }
  const at::Tensor& tokens() const { return tokens_; }        // [B, 1] int64: the queries' tokens (model input)
  const at::Tensor& rope_pos() const { return rope_pos_; }    // [B, 1] int64
  const at::Tensor& positions() const { return positions_; }  // [B] int64: the queries' row positions
  int64_t position(int64_t b) const { return position_[b]; }  // sequence b's query position
  // [B, R] int32 prompt rows each query sees through the mask in an ordinary layer (selective = false) or in a
  // layer where suffix queries select; -1 padding.
  const at::Tensor& prompt_rows(bool selective) const { return prompt_rows_[selective ? 1 : 0]; }
  // The generated rows [first decode position, query position] of every sequence.
  const DecodeRange& generated() const { return generated_; }
  // Selection tables of the queries whose document has gists (count 0: none).
  const SelectionPlan& selection() const { return selection_; }
  // [B, P] bool (P the longest prompt): prompt rows the selective list holds.
  const at::Tensor& selective_covered() const { return selective_covered_; }

 private:
  explicit DecodePlan(at::Device device) : device_(device) {}
  void upload();
  void move_selection(int64_t steps);  // the selection tables' query positions and key lengths, on the device

  GistOptions gist_;
  at::Device device_;
  std::vector<int64_t> token_, position_, rope_, first_;  // per sequence, host copies
  at::Tensor device_longs_, device_ints_;  // [3, B] tokens, rope, positions; [2, B] generated range (in place)
  at::Tensor tokens_, rope_pos_, positions_;
  at::Tensor prompt_rows_[2];
  DecodeRange generated_;
  SelectionPlan selection_;
  at::Tensor selective_covered_;
};

}  // namespace gsa
