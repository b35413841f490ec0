// The serving engine's model work behind one small interface, so the batched decode of one device or of an sp
// group plugs in without touching the scheduler.
//
// Contract (every implementation):
// - add(id, prompt, max_positions) creates a sequence whose prompt is not run yet; remove(id) frees it and its KV.
// - prefill(id, count) runs up to `count` more prompt positions; -> [V] logits of the last prompt position once
//   the prompt is complete, else an undefined tensor. Implementations may run more than count (the sharded one
//   runs the whole prompt sequence-parallel in one call).
// - decode(batch) appends token to each listed sequence and runs one decode step for all of them; -> their [V]
//   logits in batch order. Logits equal a single-sequence Generator's (generation.h) for the same tokens.
// - allocated_positions(): KV positions allocated on this rank over every sequence (grows in blocks).
// - Sharded: every rank of the sp group makes the same calls in the same order (the engine's lockstep).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "gsa/config/options.h"
#include "gsa/parallel/communicator.h"
#include "gsa/parallel/distributed_decode.h"
#include "gsa/parallel/distributed_decode_batch.h"
#include "gsa/runtime/decode_batch.h"
#include "gsa/runtime/generation.h"
#include "gsa/runtime/gist_layout.h"
#include "gsa/runtime/llama_model.h"

namespace gsa::serve {

class SequenceBackend {
 public:
  virtual ~SequenceBackend() = default;
  virtual void add(int64_t id, GistLayout prompt, int64_t max_positions) = 0;
  virtual void remove(int64_t id) = 0;
  virtual at::Tensor prefill(int64_t id, int64_t count) = 0;
  virtual std::vector<at::Tensor> decode(const std::vector<std::pair<int64_t, int64_t>>& batch) = 0;
  virtual int64_t allocated_positions() const = 0;
};

// One device: a Generator per sequence (prefill, growing cache, decode plan), and each decode step of the batch as
// one forward over all of them (DecodeBatch: restacked only when the batch changes, replayed as a CUDA graph on
// CUDA). The model must outlive the backend.
class LocalBackend : public SequenceBackend {
 public:
  LocalBackend(const LlamaModel& model, const AttentionOptions& attention) : model_(model), attention_(attention) {}
  void add(int64_t id, GistLayout prompt, int64_t max_positions) override;
  void remove(int64_t id) override;
  at::Tensor prefill(int64_t id, int64_t count) override;
  std::vector<at::Tensor> decode(const std::vector<std::pair<int64_t, int64_t>>& batch) override;
  int64_t allocated_positions() const override;

 private:
  Generator& at(int64_t id);
  const LlamaModel& model_;
  AttentionOptions attention_;
  DecodeBatch decode_batch_;
  std::map<int64_t, std::unique_ptr<Generator>> sequences_;
};

// An sp group: each sequence's prompt cut over the ranks at section boundaries (DistributedGenerator), and each
// decode step of the batch as one forward over all of them in lockstep, with one merge per layer for the whole
// batch (DistributedDecodeBatch: restacked only when the batch changes). The model and the communicator must
// outlive the backend.
class ShardedBackend : public SequenceBackend {
 public:
  ShardedBackend(const LlamaModel& model, const AttentionOptions& attention, Communicator& sp)
      : model_(model), attention_(attention), sp_(sp) {}
  void add(int64_t id, GistLayout prompt, int64_t max_positions) override;
  void remove(int64_t id) override;
  at::Tensor prefill(int64_t id, int64_t count) override;
  std::vector<at::Tensor> decode(const std::vector<std::pair<int64_t, int64_t>>& batch) override;
  int64_t allocated_positions() const override;

 private:
  DistributedGenerator& at(int64_t id);
  const LlamaModel& model_;
  AttentionOptions attention_;
  Communicator& sp_;
  std::map<int64_t, std::unique_ptr<DistributedGenerator>> sequences_;
  DistributedDecodeBatch decode_batch_;
};

// KV bytes one position takes over every layer (K and V).
int64_t kv_bytes_per_position(const ModelOptions& model);

}  // namespace gsa::serve
