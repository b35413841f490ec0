// Shared fixtures of the sequence-parallel tests: a tiny model, random packed batches, next-token labels, shard
// cuts in awkward places, and the single-rank oracle (the plain runtime forward over whole rows). Every rank
// builds the same fixtures from the same seeds.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>

#include "gsa/parallel/sequence_shard.h"
#include "gsa/runtime/attention_plan.h"
#include "gsa/runtime/gist_layout.h"
#include "gsa/runtime/llama_model.h"

namespace gsa::test {

inline ModelOptions sp_tiny_model() {
  ModelOptions o;
  o.vocab_size = 264;
  o.hidden_size = 32;
  o.intermediate_size = 48;
  o.num_layers = 2;
  o.num_heads = 4;
  o.num_kv_heads = 2;
  o.head_dim = 8;
  o.init_std = 0.2;
  return o;
}

inline GistOptions sp_gist_options(int64_t levels, int64_t sink = 2) {
  GistOptions g;
  g.levels = levels;
  g.chunk = 4;
  g.fanout = 2;
  g.sink = sink;
  return g;
}

// rows packed rows of 1-2 documents (context 20-60 tokens, suffix 3-8); sink raw tokens at each document's start.
inline std::vector<GistLayout> sp_random_batch(int64_t levels, int64_t rows, uint32_t seed, int64_t sink = 2) {
  std::mt19937 rng(seed);
  std::vector<GistLayout> out;
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<Document> docs(1 + rng() % 2);
    for (Document& doc : docs) {
      const int64_t context = 20 + rng() % 41, suffix = 3 + rng() % 6;
      for (int64_t i = 0; i < context; ++i) doc.context.push_back(rng() % 256);
      for (int64_t i = 0; i < suffix; ++i) doc.suffix.push_back(rng() % 256);
    }
    out.push_back(build_layout(docs, sp_gist_options(levels, sink)));
  }
  return out;
}

// labels[b, t] = the next token when it is a raw token of the same document, else -100.  [B, T]
inline at::Tensor sp_next_token_labels(const std::vector<GistLayout>& rows) {
  const int64_t length = padded_length(rows);
  at::Tensor labels = at::full({static_cast<int64_t>(rows.size()), length}, -100, at::kLong);
  for (size_t b = 0; b < rows.size(); ++b) {
    const GistLayout& row = rows[b];
    for (int64_t t = 0; t + 1 < row.size(); ++t) {
      if (!row.is_gist(t + 1) && row.doc[t + 1] == row.doc[t]) labels[b][t] = row.tokens[t + 1];
    }
  }
  return labels;
}

// Cuts at awkward places: inside chunks, right before and after gists, and shards of one or two positions, so
// halos span several ranks.
inline SequenceShards sp_awkward_shards(int64_t length, int64_t sp, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int64_t> begin{0};
  for (int64_t r = 1; r < sp; ++r) {
    const int64_t remaining = length - begin.back() - (sp - r);
    int64_t size = 1 + static_cast<int64_t>(rng() % std::max<int64_t>(remaining / 2, 1));
    if (r == 1 && sp > 2) size = 1 + rng() % 2;  // a tiny shard: the next rank's halo spans two ranks
    begin.push_back(begin.back() + size);
  }
  begin.push_back(length);
  return shards_from_boundaries(begin, length);
}

// The single-rank oracle: mean next-token loss over the whole batch and the gradient of every parameter.
struct SingleRankResult {
  double loss = 0;
  std::map<std::string, at::Tensor> grads;
  at::Tensor argmax;  // [B, T] the argmax of every position's logits
};

inline SingleRankResult single_rank_loss(const LlamaModel& model, const std::vector<GistLayout>& rows,
                                         const at::Tensor& labels, const AttentionOptions& attention, bool selective) {
  for (const at::Tensor& p : model.parameter_list()) p.mutable_grad() = at::Tensor();
  AttentionPlan plan = make_attention_plan(row_pointers(rows), 0, -1, attention, model.device());
  at::Tensor logits = model.forward(plan.tokens, plan.rope_pos, plan, attention, selective);
  at::Tensor loss = at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}),
                                           labels.to(logits.device()).reshape({-1}), {}, at::Reduction::Mean, -100);
  loss.backward();
  SingleRankResult out;
  out.loss = loss.item<double>();
  out.argmax = logits.detach().argmax(-1).cpu();
  for (const auto& [name, p] : model.parameters()) {
    out.grads[name] = p.grad().detach().clone();
    p.mutable_grad() = at::Tensor();
  }
  return out;
}

// Answers (maximal runs of labelled positions of a row) right under `argmax`, counted on the host: {correct, total}.
inline std::pair<int64_t, int64_t> answer_tally_oracle(const at::Tensor& argmax, const at::Tensor& labels) {
  const at::Tensor a = argmax.cpu(), l = labels.cpu();
  int64_t correct = 0, total = 0;
  for (int64_t b = 0; b < l.size(0); ++b) {
    bool in_answer = false, right = true;
    for (int64_t t = 0; t <= l.size(1); ++t) {
      const bool labelled = t < l.size(1) && l[b][t].item<int64_t>() != -100;
      if (in_answer && !labelled) {
        ++total;
        correct += right;
      }
      if (labelled && !in_answer) right = true;
      if (labelled) right = right && a[b][t].item<int64_t>() == l[b][t].item<int64_t>();
      in_answer = labelled;
    }
  }
  return {correct, total};
}

// Labels cut into two-position answers (positions 4i + 2 and 4i + 3 keep their label, the others -100) whose
// every other answer is replaced by `argmax` (the model's own prediction): some answers right, the others mostly
// wrong, so an accuracy that miscounts answers shows.
inline at::Tensor answer_mix_labels(const at::Tensor& labels, const at::Tensor& argmax) {
  at::Tensor mixed = labels.cpu().clone();
  for (int64_t b = 0; b < mixed.size(0); ++b) {
    for (int64_t t = 0; t < mixed.size(1); ++t) {
      if (mixed[b][t].item<int64_t>() == -100) continue;
      if (t % 4 <= 1) {
        mixed[b][t] = -100;
      } else if ((t / 4) % 2 == 0) {
        mixed[b][t] = argmax[b][t].item<int64_t>();
      }
    }
  }
  return mixed;
}

}  // namespace gsa::test
