#include "gsa/serve/sequence_backend.h"

#include "gsa/parallel/sequence_shard.h"
#include "gsa/runtime/error.h"

namespace gsa::serve {

int64_t kv_bytes_per_position(const ModelOptions& model) {
  const int64_t element = static_cast<int64_t>(c10::elementSize(to_scalar_type(model.dtype)));
  return 2 * model.num_layers * model.num_kv_heads * model.head_dim * element;
}

Generator& LocalBackend::at(int64_t id) {
  auto it = sequences_.find(id);
  GSA_CHECK(it != sequences_.end(), "no sequence ", id);
  return *it->second;
}

void LocalBackend::add(int64_t id, GistLayout prompt, int64_t max_positions) {
  GSA_CHECK(sequences_.count(id) == 0, "sequence ", id, " exists already");
  sequences_[id] = std::make_unique<Generator>(model_, attention_, std::move(prompt), max_positions);
}

void LocalBackend::remove(int64_t id) { sequences_.erase(id); }

at::Tensor LocalBackend::prefill(int64_t id, int64_t count) { return at(id).prefill_chunk(count); }

std::vector<at::Tensor> LocalBackend::decode(const std::vector<std::pair<int64_t, int64_t>>& batch) {
  if (batch.empty()) return {};
  std::vector<Generator*> sequences;
  std::vector<int64_t> tokens;
  for (const auto& [id, token] : batch) {
    sequences.push_back(&at(id));
    tokens.push_back(token);
  }
  return decode_batch_.step(sequences, tokens);
}

int64_t LocalBackend::allocated_positions() const {
  int64_t total = 0;
  for (const auto& [id, gen] : sequences_) total += gen->cache_positions();
  return total;
}

DistributedGenerator& ShardedBackend::at(int64_t id) {
  auto it = sequences_.find(id);
  GSA_CHECK(it != sequences_.end(), "no sequence ", id);
  return *it->second;
}

void ShardedBackend::add(int64_t id, GistLayout prompt, int64_t max_positions) {
  GSA_CHECK(sequences_.count(id) == 0, "sequence ", id, " exists already");
  const SequenceShards shards = shard_at_sections({prompt}, sp_.size());
  sequences_[id] =
      std::make_unique<DistributedGenerator>(model_, attention_, std::move(prompt), shards, max_positions, sp_);
}

void ShardedBackend::remove(int64_t id) {
  // The next step restacks anyway (the batch changed): drop the stacked copies of this sequence's tree now.
  decode_batch_.clear();
  sequences_.erase(id);
}

at::Tensor ShardedBackend::prefill(int64_t id, int64_t /*count: the prompt runs sequence-parallel at once*/) {
  return at(id).prefill();
}

std::vector<at::Tensor> ShardedBackend::decode(const std::vector<std::pair<int64_t, int64_t>>& batch) {
  if (batch.empty()) return {};
  std::vector<DistributedGenerator*> sequences;
  std::vector<int64_t> tokens;
  for (const auto& [id, token] : batch) {
    sequences.push_back(&at(id));
    tokens.push_back(token);
  }
  return decode_batch_.step(sequences, tokens);
}

int64_t ShardedBackend::allocated_positions() const {
  int64_t total = 0;
  for (const auto& [id, gen] : sequences_) total += gen->held_positions();
  return total;
}

}  // namespace gsa::serve
