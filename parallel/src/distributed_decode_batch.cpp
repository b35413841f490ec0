#include "gsa/parallel/distributed_decode_batch.h"

#include <algorithm>
#include <optional>
#include <set>

#include "gsa/parallel/phase_timers.h"
#include "gsa/runtime/attention.h"
#include "gsa/runtime/decode_attention.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/kernel_choice.h"
#include "gsa/runtime/selection.h"
#include "gsa/runtime/sparse_decode.h"

namespace gsa {
namespace {

// Tensors of one dtype and device whose dim `dim` differs, padded there with `fill` to the longest and
// concatenated along dim 0 (the batch); one part is returned as it is (no copy of a lone sequence's tree).
at::Tensor pad_and_cat(const std::vector<at::Tensor>& parts, int64_t dim, double fill) {
  if (parts.size() == 1) return parts[0];
  int64_t longest = 0;
  for (const at::Tensor& t : parts) longest = std::max(longest, t.size(dim));
  std::vector<at::Tensor> padded;
  for (const at::Tensor& t : parts) {
    std::vector<int64_t> pad(2 * (t.dim() - dim), 0);  // constant_pad_nd: (left, right) pairs from the last dim
    pad.back() = longest - t.size(dim);
    padded.push_back(at::constant_pad_nd(t, pad, fill));
  }
  return at::cat(padded, 0);
}

// What one layer of a batched distributed decode step reads: the stacked plan (positions), this rank's caches of
// the sequences, the stacked trees and slot maps, and the step's column ranges.
struct ShardedStep {
  const DecodePlan& plan;
  DecodeCaches& caches;
  const KvCache* single;                  // the one sequence's cache when B == 1 (no stacked copy), else null
  const std::vector<at::Tensor>& tree_k;  // [layers] of [B, Hkv, W, D]
  const at::Tensor& tree_slot;            // [B, P]
  const at::Tensor& own_slot;             // [B, P]
  DecodeRange generated;                  // this rank's columns of the generated rows (empty off the tail)
  at::Tensor append_columns;              // [B] int64: where the tail owner writes the step's K/V
  bool tail_owner;
  const AttentionOptions& options;
  Communicator& sp;
};

// The per-layer attention of the step: every sequence's query over the rows this rank holds, then one all-gather
// of the batch's partials and one fp32 merge.
class ShardedLayerAttention : public LayerAttention {
 public:
  explicit ShardedLayerAttention(const ShardedStep& step) : s_(step) {}

  // q [B, Hq, 1, D], k, v [B, Hkv, 1, D] (post-RoPE) -> [B, Hq, 1, D] in q's dtype.
  at::Tensor attend(int64_t layer, bool layer_selects, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                    double scale) override {
    const int64_t B = s_.plan.batch();
    GSA_CHECK(q.dim() == 4 && q.size(0) == B && q.size(2) == 1 && k.size(2) == 1,
              "distributed decode takes one query per sequence: q ", q.sizes(), " for ", B, " sequences");
    if (s_.tail_owner) s_.caches.append(layer, s_.append_columns, k.select(2, 0), v.select(2, 0));
    return attend_rotated(layer, layer_selects, q.select(2, 0), scale).unsqueeze(2);
  }

  // The fused path, as on one device (decode_attention.h): the tail owner rotates q and k and writes k and v into
  // its columns in the q/k/v projection's kernel; the other ranks rotate q alone (the same bits).
  bool takes_fused_qkv(at::ScalarType dtype, int64_t q_heads, int64_t head_dim) const override {
    return decode_takes_fused_qkv(s_.caches, s_.options, dtype, q_heads, head_dim);
  }
  StepKvRows step_kv_rows(int64_t layer) override {
    return {s_.tail_owner ? s_.append_columns : at::Tensor(), s_.caches.rows(layer, false),
            s_.caches.rows(layer, true)};
  }

  // The step's attention (its K/V already stored by the tail owner): q1 [B, Hq, D] post-RoPE -> [B, Hq, D].
  at::Tensor attend_rotated(int64_t layer, bool layer_selects, const at::Tensor& q1, double scale) override {
    const int64_t B = s_.plan.batch();
    GSA_CHECK(q1.dim() == 3 && q1.size(0) == B, "distributed decode takes one query per sequence: q ", q1.sizes(),
              " for ", B, " sequences");
    const at::Tensor& like = s_.caches.sample(layer);
    const int64_t hkv = like.size(1);
    const bool kernels =
        use_kernel_backend(s_.options.backend, q1.is_cuda(), sparse_decode_unsupported(q1, like.scalar_type(), hkv),
                           str_cat("decode q ", q1.sizes()));
    const at::Tensor rows = key_positions(layer, layer_selects, q1, hkv, kernels);  // [B, Hkv, R] int32 positions
    // Positions -> this rank's columns (-1: held elsewhere, or padding).
    const at::Tensor batch_index = at::arange(B, rows.options()).view({B, 1, 1});
    const at::Tensor columns =
        s_.own_slot.index({batch_index, rows.clamp_min(0)}).masked_fill(rows < 0, -1).to(at::kInt);  // [B, Hkv, R]
    std::optional<ScopedPhase> compute(std::in_place, Phase::kAttention);
    DecodeAttention mine;
    if (kernels) {
      // Alone in its group the rank's output is the attention: rounded to q's dtype by the kernel; else fp32 for
      // the merge across ranks.
      mine = sparse_decode_rows(q1, s_.caches.rows(layer, false), s_.caches.rows(layer, true), hkv, columns, scale, 0,
                                &s_.generated, s_.sp.size() == 1 ? q1.scalar_type() : at::kFloat);
    } else {
      const at::Tensor keys = s_.single ? s_.single->k[layer] : s_.caches.stacked(layer, false);
      const at::Tensor values = s_.single ? s_.single->v[layer] : s_.caches.stacked(layer, true);
      mine = sparse_decode_reference(q1, keys, values, columns, scale, &s_.generated);
    }
    compute.reset();
    if (s_.sp.size() == 1) return mine.out.to(q1.scalar_type());  // the whole attention already
    // [B, Hq, D + 1] from every rank in one all-gather, merged in fp32.
    ScopedPhase merge(Phase::kDecodeMerge);
    const at::Tensor packed = at::cat({mine.out, mine.lse.unsqueeze(-1)}, -1).contiguous();
    at::Tensor gathered = at::empty({s_.sp.size() * packed.numel()}, packed.options());
    s_.sp.all_gather(packed.reshape({-1}), gathered);
    gathered = gathered.view({s_.sp.size(), B, packed.size(1), packed.size(2)});
    const int64_t d = packed.size(-1) - 1;
    std::vector<PartialAttention> parts;
    for (int r = 0; r < s_.sp.size(); ++r) parts.push_back({gathered[r].narrow(-1, 0, d), gathered[r].select(-1, d)});
    return merge_partials(parts).out.to(q1.scalar_type());  // [B, Hq, D]
  }

 private:
  // [B, Hkv, R] int32 positions each query attends on any rank: its prompt rows, then (a selective layer) the rows
  // of the chunks selected over its replicated gist tree. When every sequence selects and the kernels run, they
  // write straight after the prompt rows of one list (as the single-device step does); no host synchronisation
  // either way, so the step can be captured.
  at::Tensor key_positions(int64_t layer, bool layer_selects, const at::Tensor& q1, int64_t hkv, bool kernels) {
    const int64_t B = s_.plan.batch();
    const at::Tensor prompt = s_.plan.prompt_rows(layer_selects).unsqueeze(1).expand({B, hkv, -1});  // int32
    const SelectionPlan& sel = s_.plan.selection();
    if (!layer_selects || sel.count == 0) return prompt;
    const at::Tensor& tree = s_.tree_k[layer];
    if (kernels && sel.count == B && selection_kernels_unsupported(q1, tree, s_.tree_slot, s_.plan.gist()).empty()) {
      const int64_t R = prompt.size(2);
      const int64_t S = selection_key_slots(q1.size(1), hkv, sel, s_.plan.gist(), s_.options.selection);
      at::Tensor all = at::empty({B, hkv, R + S}, prompt.options());
      all.narrow(2, 0, R).copy_(prompt);
      select_chunks_into(q1, tree, sel, s_.plan.gist(), s_.options.selection, s_.tree_slot,
                         s_.plan.selective_covered(), all.narrow(2, R, S));
      return all;
    }
    const at::Tensor picked = select_chunks(q1.index_select(0, sel.row), tree, sel, s_.plan.gist(),
                                            s_.options.selection, s_.tree_slot, AttentionBackend::kAuto,
                                            s_.plan.selective_covered())
                                  .key_pos.to(at::kInt);  // [Ns, Hkv, S] positions
    const at::Tensor extra = at::full({B, hkv, picked.size(2)}, -1, picked.options()).index_copy(0, sel.row, picked);
    return at::cat({prompt, extra}, 2);
  }

  const ShardedStep& s_;
};

}  // namespace

DistributedDecodeBatch::DistributedDecodeBatch() = default;
DistributedDecodeBatch::~DistributedDecodeBatch() = default;

void DistributedDecodeBatch::clear() {
  key_.clear();
  plan_.reset();
  caches_.reset();
  tree_k_.clear();
  tree_slot_ = own_slot_ = column_offset_ = at::Tensor();
}

std::vector<at::Tensor> DistributedDecodeBatch::step(const std::vector<DistributedGenerator*>& sequences,
                                                     const std::vector<int64_t>& tokens) {
  GSA_CHECK(!sequences.empty() && sequences.size() == tokens.size(), "batched distributed decode: ", sequences.size(),
            " sequences for ", tokens.size(), " tokens");
  at::NoGradGuard no_grad;
  const DistributedGenerator& first = *sequences[0];
  // Every check before any sequence moves: the same error on every rank, nothing half-stepped.
  std::set<uint64_t> serials;
  std::vector<std::array<uint64_t, 3>> key;
  for (size_t i = 0; i < sequences.size(); ++i) {
    const DistributedGenerator& g = *sequences[i];
    GSA_CHECK(&g.model_ == &first.model_ && &g.sp_ == &first.sp_,
              "batched distributed decode: the sequences need one model and one communicator");
    GSA_CHECK(serials.insert(g.serial_).second, "batched distributed decode: sequence ", i, " is in the batch twice");
    const std::string why_not = g.cannot_step(tokens[i]);
    GSA_CHECK(why_not.empty(), "batched distributed decode: sequence ", i, ": ", why_not);
    key.push_back({g.serial_, g.prefills_, static_cast<uint64_t>(g.layout_.size())});
  }
  const bool same = plan_ != nullptr && key == key_;
  bool grew = false;  // a tail owner's cache moved (DecodeCaches follows it; a captured step would not)
  for (size_t i = 0; i < sequences.size(); ++i) {
    const uint64_t generation = sequences[i]->cache_generation_;
    sequences[i]->prepare_step(tokens[i]);
    grew = grew || sequences[i]->cache_generation_ != generation;
    ++key[i][2];
  }
  if (same) {
    plan_->advance(tokens);
  } else {
    std::vector<const DecodePlan*> plans;
    std::vector<KvCache*> caches;
    std::vector<at::Tensor> tree_slots, own_slots;
    std::vector<int64_t> offsets;
    for (DistributedGenerator* g : sequences) {
      plans.push_back(g->decode_.get());
      caches.push_back(&g->cache_);
      tree_slots.push_back(g->tree_slot_);
      own_slots.push_back(g->own_slot_);
      offsets.push_back(g->prompt_local_ - g->prompt_size_);
    }
    plan_ = std::make_unique<DecodePlan>(DecodePlan::stack(plans));
    caches_ = std::make_unique<DecodeCaches>(caches);
    tree_k_.clear();
    for (size_t l = 0; l < first.tree_k_.size(); ++l) {
      std::vector<at::Tensor> trees;
      for (const DistributedGenerator* g : sequences) trees.push_back(g->tree_k_[l]);
      tree_k_.push_back(pad_and_cat(trees, 2, 0.0));
    }
    tree_slot_ = pad_and_cat(tree_slots, 1, -1);
    own_slot_ = pad_and_cat(own_slots, 1, -1);
    column_offset_ = at::tensor(offsets, at::kLong).to(at::kInt).to(first.model_.device());
    capturable_ = decode_step_capturable(first.model_, first.attention_) && first.sp_.can_capture();
    ++restacks_;
  }
  key_ = std::move(key);
  if (!same || grew) graph_.reset();  // new plan tensors, or a tail cache that moved: capture anew

  const AttentionOptions& options = first.attention_;
  auto forward = [&] {
    // This rank's columns for the step: the generated rows live on the tail owner only (computed inside the
    // step from the plan's in-place tensors, so a replayed graph reads the current step's).
    const DecodeRange& generated = plan_->generated();          // positions
    const at::Tensor begin = generated.begin + column_offset_;  // [B] int32
    ShardedStep step{*plan_,
                     *caches_,
                     sequences.size() == 1 ? &first.cache_ : nullptr,
                     tree_k_,
                     tree_slot_,
                     own_slot_,
                     DecodeRange{begin, first.tail_owner_ ? generated.end + column_offset_ : begin,
                                 first.tail_owner_ ? generated.max_rows : 0},
                     plan_->positions() + column_offset_,  // [B] int64
                     first.tail_owner_,
                     options,
                     first.sp_};
    ShardedLayerAttention attention(step);
    return first.model_.forward(plan_->tokens(), plan_->rope_pos(), attention, options,
                                options.selection.enabled);  // [B, 1, V]
  };
  // A CUDA graph unless a phase timer synchronises inside the step.
  const bool graph = capturable_ && !PhaseTimers::enabled();
  const at::Tensor logits = graph ? graph_.run(forward) : forward();
  if (graph) first.sp_.fence();  // the replay's collectives: the communicator's deadline and abort
  std::vector<at::Tensor> out;
  for (int64_t b = 0; b < plan_->batch(); ++b) out.push_back(logits[b][0]);
  return out;
}

}  // namespace gsa
