// Distributed decode for serving (DESIGN.md section 5, "Serving decode"): the prompt's KV cache stays sharded
// across the sp group and is never gathered.
//
// Contract:
// - prefill() runs the prompt sequence-parallel (sp_attention.h) with the given shards; each rank keeps the K/V
//   of its own positions and the replicated gist tree (gists of every level and sinks) of every layer. The last
//   prompt position's logits are broadcast from its owner; every rank returns them.
// - step(token) runs in lockstep on every rank: a decode step of a batch of one (DistributedDecodeBatch,
//   distributed_decode_batch.h, the one decode path): the new token goes through the model on every rank (one
//   token, replicated), its K/V is appended on the rank owning the tail (the last shard), and per layer each rank
//   attends over the keys it holds (the decode plan's rows, decode_plan.h: O(1) host work per step; selection
//   over the replicated tree, no communication; the sparse decode kernels on CUDA), then one all-gather
//   of the small partial outputs and log-sum-exps merges them in fp32. The tail owner's cache for generated
//   tokens grows in blocks of kKvBlockPositions (generation.h), up to max_positions. Logits equal single-device
//   Generator::step up to float rounding.
// - prepare_step(token) is step() without the forward (checks, cache growth, the sequence's own decode plan
//   moved on): DistributedDecodeBatch runs the forward of many sequences at once.
// - generate(): rank 0 samples (Sampler of generation.h) and broadcasts each token, so every rank follows the
//   same sequence whatever the sampling.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gsa/config/options.h"
#include "gsa/parallel/communicator.h"
#include "gsa/parallel/sequence_shard.h"
#include "gsa/runtime/decode_plan.h"
#include "gsa/runtime/generation.h"
#include "gsa/runtime/gist_layout.h"
#include "gsa/runtime/llama_model.h"

namespace gsa {

class DistributedDecodeBatch;

class DistributedGenerator {
 public:
  // shards: of the prompt's positions; max_positions: prompt + the most generated positions.
  DistributedGenerator(const LlamaModel& model, const AttentionOptions& attention, GistLayout prompt,
                       const SequenceShards& shards, int64_t max_positions, Communicator& sp);
  ~DistributedGenerator();

  at::Tensor prefill();            // -> [V] logits of the last prompt position (every rank)
  at::Tensor step(int64_t token);  // appends token, -> [V] its logits (every rank)
  // on_token (when set) gets each id as soon as every rank knows it.
  std::vector<int64_t> generate(const SamplingOptions& sampling, GenerationStats* stats = nullptr,
                                const std::function<void(int64_t)>& on_token = {});

  const GistLayout& layout() const { return layout_; }
  int64_t held_positions() const { return held_; }  // positions whose K/V this rank holds
  bool has_room() const { return layout_.size() < max_positions_; }

 private:
  friend class DistributedDecodeBatch;
  static uint64_t next_serial();
  // What prepare_step would reject (not prefilled, full, token outside the vocabulary): "" when it can step.
  std::string cannot_step(int64_t token) const;
  void prepare_step(int64_t token);
  void reserve(int64_t positions);  // grows the tail owner's K/V in blocks to reach `positions`

  const LlamaModel& model_;
  AttentionOptions attention_;
  GistLayout layout_;
  SequenceShards shards_;
  int64_t max_positions_;
  int64_t prompt_size_;
  int64_t prompt_local_ = 0;  // prompt positions this rank holds
  Communicator& sp_;
  bool tail_owner_ = false;
  int64_t held_ = 0;
  KvCache cache_;                   // [layers] of [1, Hkv, local capacity, D]: own positions (+ generated on the tail)
  std::vector<at::Tensor> tree_k_;  // [layers] of [1, Hkv, W, D]: the replicated keys, for selection
  at::Tensor own_slot_;             // [1, prompt] column in cache_ of each prompt position; -1 elsewhere
  at::Tensor tree_slot_;            // [1, prompt] column in tree_k_; -1 elsewhere
  std::unique_ptr<DecodePlan> decode_;                 // from the first step on: the rows each step attends (positions)
  std::unique_ptr<DistributedDecodeBatch> own_batch_;  // step(): this sequence alone
  uint64_t serial_;        // unique per DistributedGenerator of the process (batches tell them apart)
  uint64_t prefills_ = 0;  // bumped by every prefill (its cache and tree are new)
  uint64_t cache_generation_ = 0;  // bumped whenever this rank's cache moves (a tail owner's growth)
};

}  // namespace gsa
