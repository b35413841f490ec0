#include "validate.h"

#include <charconv>
#include <cmath>
#include <cstdint>

#include "gsa/config/multi_doc_rules.h"

namespace gsa::config_detail {
namespace {

// The shortest text that reads back as `v` ("0.003", "1e-05").
std::string format_double(double v) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), v);
  return std::string(buffer, result.ptr);
}

class Checker {
 public:
  explicit Checker(const ValueOrigins& origins) : origins_(origins) {}

  void fail(const std::vector<std::string>& paths, const std::string& message) {
    errors_.push_back(origins_.where(paths) + ": " + message);
  }

  // Integer in [lo, hi].
  void in_range(const std::string& path, int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi) {
      fail({path}, path + " = " + std::to_string(v) + " is out of range (" + std::to_string(lo) + ".." +
                       std::to_string(hi) + ")");
    }
  }

  // Integer >= lo; `why` (optional) explains the bound.
  void at_least(const std::string& path, int64_t v, int64_t lo, const std::string& why = "") {
    if (v < lo) {
      fail({path}, path + " = " + std::to_string(v) + " is out of range (>= " + std::to_string(lo) +
                       (why.empty() ? "" : ": " + why) + ")");
    }
  }

  // Finite double > 0.
  void positive(const std::string& path, double v) {
    if (!(v > 0) || !std::isfinite(v)) fail_double(path, v, "> 0");
  }

  // Finite double >= 0.
  void non_negative(const std::string& path, double v) {
    if (!(v >= 0) || !std::isfinite(v)) fail_double(path, v, ">= 0");
  }

  // Double in [0, 1] (hi_open: [0, 1)).
  void unit_interval(const std::string& path, double v, bool hi_open) {
    const bool ok = v >= 0 && (hi_open ? v < 1 : v <= 1);
    if (!ok) fail_double(path, v, hi_open ? "[0, 1)" : "[0, 1]");
  }

  size_t error_count() const { return errors_.size(); }
  std::vector<std::string> take_errors() { return std::move(errors_); }

 private:
  void fail_double(const std::string& path, double v, const std::string& range) {
    fail({path}, path + " = " + format_double(v) + " is out of range (" + range + ")");
  }

  const ValueOrigins& origins_;
  std::vector<std::string> errors_;
};

void check_model(const ModelOptions& m, Checker& c) {
  c.at_least("model.vocab_size", m.vocab_size, kMinVocabSize, "256 bytes + pad, bos, eos + 4 gist ids");
  c.at_least("model.hidden_size", m.hidden_size, 1);
  c.at_least("model.intermediate_size", m.intermediate_size, 1);
  c.at_least("model.num_layers", m.num_layers, 1);
  c.at_least("model.num_heads", m.num_heads, 1);
  c.at_least("model.num_kv_heads", m.num_kv_heads, 1);
  if (m.num_heads >= 1 && m.num_kv_heads >= 1 && m.num_heads % m.num_kv_heads != 0) {
    c.fail({"model.num_heads", "model.num_kv_heads"},
           "model.num_heads = " + std::to_string(m.num_heads) + " is not a multiple of model.num_kv_heads = " +
               std::to_string(m.num_kv_heads) + " (each kv head serves num_heads / num_kv_heads query heads)");
  }
  c.at_least("model.head_dim", m.head_dim, 2);
  if (m.head_dim >= 2 && m.head_dim % 2 != 0) {
    c.fail({"model.head_dim"},
           "model.head_dim = " + std::to_string(m.head_dim) + " must be even (RoPE rotates pairs of dimensions)");
  }
  c.positive("model.rope_theta", m.rope_theta);
  c.positive("model.rms_norm_eps", m.rms_norm_eps);
  c.positive("model.init_std", m.init_std);
  c.positive("model.rope_scaling_factor", m.rope_scaling_factor);
  c.positive("model.rope_low_freq_factor", m.rope_low_freq_factor);
  c.positive("model.rope_high_freq_factor", m.rope_high_freq_factor);
  if (m.rope_scaling == RopeScaling::kLlama3 && !(m.rope_high_freq_factor > m.rope_low_freq_factor)) {
    c.fail({"model.rope_high_freq_factor", "model.rope_low_freq_factor"},
           "model.rope_high_freq_factor must be above model.rope_low_freq_factor for llama3 rope scaling");
  }
  c.at_least("model.rope_original_max_position", m.rope_original_max_position, 1);
  c.at_least("model.max_position_embeddings", m.max_position_embeddings, 1);
  if (m.architecture == Architecture::kQwen2 && !m.attention_bias) {
    c.fail({"model.architecture", "model.attention_bias"}, "model.architecture QWEN2 needs model.attention_bias: true");
  }
  for (size_t i = 0; i < m.gist_token_ids.size(); ++i) {
    const int64_t id = m.gist_token_ids[i];
    if (id < 0 || id >= m.vocab_size) {
      c.fail({"model.gist_token_ids"}, "model.gist_token_ids[" + std::to_string(i) + "] = " + std::to_string(id) +
                                           " is outside the vocabulary [0, " + std::to_string(m.vocab_size) + ")");
    }
    for (size_t j = 0; j < i; ++j) {
      if (m.gist_token_ids[j] == id) {
        c.fail({"model.gist_token_ids"}, "model.gist_token_ids has " + std::to_string(id) + " twice");
      }
    }
  }
}

void check_gist(const GistOptions& g, Checker& c) {
  c.at_least("gist.sink", g.sink, 0);
  c.at_least("gist.chunk", g.chunk, 1);
  c.at_least("gist.fanout", g.fanout, 2);
  c.in_range("gist.levels", g.levels, 1, 4);
  c.at_least("gist.prev_chunks", g.prev_chunks, 0);
}

void check_attention(const AttentionOptions& a, Checker& c) {
  c.at_least("attention.query_block", a.query_block, 0);
  c.at_least("attention.reference_chunk_queries", a.reference_chunk_queries, 0);
  c.at_least("attention.selection.first_selective_layer", a.selection.first_selective_layer, 0);
  c.at_least("attention.selection.fixed_k", a.selection.fixed_k, 1);
}

// Rules across sections.
void check_cross(const GsaOptions& o, Checker& c) {
  if (o.model.dtype == DType::kFloat32 && o.train.master_weights == DType::kBFloat16) {
    c.fail({"train.master_weights", "model.dtype"},
           "train.master_weights = BFLOAT16 is narrower than model.dtype = FLOAT32 (the optimizer's weights must hold "
           "at least the parameters' precision)");
  }
  const int64_t gist_ids = static_cast<int64_t>(o.model.gist_token_ids.size());
  if (gist_ids > 0 && gist_ids < o.gist.levels) {
    c.fail({"model.gist_token_ids", "gist.levels"},
           "model.gist_token_ids has " + std::to_string(gist_ids) + " ids, gist.levels = " +
               std::to_string(o.gist.levels) + " needs one per level");
  }
  const int64_t first = o.attention.selection.first_selective_layer, layers = o.model.num_layers;
  if (layers >= 1 && first >= layers) {
    c.fail({"attention.selection.first_selective_layer", "model.num_layers"},
           "attention.selection.first_selective_layer = " + std::to_string(first) +
               " is beyond the last layer (model.num_layers = " + std::to_string(layers) + ": layers 0.." +
               std::to_string(layers - 1) + "; to turn selection off set attention.selection.enabled: false)");
  }
  const bool corpus = o.data.source == DataSourceKind::kText || o.data.source == DataSourceKind::kJsonl ||
                      o.data.source == DataSourceKind::kTokenBin;
  if (corpus && o.data.corpus.path.empty()) {
    c.fail({"data.source", "data.corpus.path"}, "data.source reads a corpus file but data.corpus.path is empty");
  }
  if (corpus && o.data.examples_per_row != 1) {
    c.fail({"data.examples_per_row", "data.source"},
           "data.examples_per_row = " + std::to_string(o.data.examples_per_row) +
               " applies to the synthetic tasks only; a corpus packs data.corpus.sequence_length tokens per row");
  }
}

void check_train(const TrainOptions& t, Checker& c) {
  c.at_least("train.steps", t.steps, 1);
  c.at_least("train.batch_size", t.batch_size, 1);
  c.positive("train.lr", t.lr);
  c.unit_interval("train.min_lr_ratio", t.min_lr_ratio, /*hi_open=*/false);
  c.at_least("train.warmup_steps", t.warmup_steps, 0);
  c.unit_interval("train.decay_fraction", t.decay_fraction, /*hi_open=*/false);
  c.non_negative("train.weight_decay", t.weight_decay);
  c.unit_interval("train.beta1", t.beta1, /*hi_open=*/true);
  c.unit_interval("train.beta2", t.beta2, /*hi_open=*/true);
  c.non_negative("train.grad_clip", t.grad_clip);
  c.at_least("train.log_every", t.log_every, 1);
  c.at_least("train.eval_batches", t.eval_batches, 1);
  c.at_least("train.checkpoint_every", t.checkpoint_every, 0);
  c.at_least("train.keep_checkpoints", t.keep_checkpoints, 0);
  c.at_least("train.grad_accumulation", t.grad_accumulation, 1);
  if (t.grad_accumulation >= 1 && t.batch_size >= 1 && t.batch_size % t.grad_accumulation != 0) {
    c.fail({"train.batch_size", "train.grad_accumulation"},
           "train.batch_size = " + std::to_string(t.batch_size) + " is not a multiple of train.grad_accumulation = " +
               std::to_string(t.grad_accumulation) + " (each micro-batch takes an equal share of the rows)");
  }
}

void check_data(const DataOptions& d, Checker& c) {
  c.at_least("data.retrieval.num_pairs", d.retrieval.num_pairs, 1);
  c.at_least("data.retrieval.key_len", d.retrieval.key_len, 1);
  c.at_least("data.retrieval.value_len", d.retrieval.value_len, 1);
  c.in_range("data.retrieval.alphabet", d.retrieval.alphabet, 2, 26);
  c.at_least("data.examples_per_row", d.examples_per_row, 1);
  c.at_least("data.row_tokens", d.row_tokens, 0);
  if (d.row_tokens > 0 && d.examples_per_row != 1) {
    c.fail({"data.row_tokens", "data.examples_per_row"},
           "data.row_tokens = " + std::to_string(d.row_tokens) + " packs rows by length; data.examples_per_row = " +
               std::to_string(d.examples_per_row) + " must then be 1");
  }
  c.at_least("data.passkey.filler_sentences", d.passkey.filler_sentences, 1);
  c.in_range("data.passkey.digits", d.passkey.digits, 1, 18);
  const size_t before_multi_doc = c.error_count();
  c.at_least("data.multi_doc.documents", d.multi_doc.documents, 1);
  c.at_least("data.multi_doc.pairs_per_document", d.multi_doc.pairs_per_document, 1);
  c.at_least("data.multi_doc.key_len", d.multi_doc.key_len, 1);
  c.at_least("data.multi_doc.value_len", d.multi_doc.value_len, 1);
  c.in_range("data.multi_doc.alphabet", d.multi_doc.alphabet, 2, 52);  // above 26: digit_values (multi_doc_rules.h)
  c.at_least("data.multi_doc.questions", d.multi_doc.questions, 1);
  c.at_least("data.multi_doc.pair_width", d.multi_doc.pair_width, 0);
  c.in_range("data.multi_doc.min_documents", d.multi_doc.min_documents, 0, d.multi_doc.documents);
  c.at_least("data.multi_doc.filler", d.multi_doc.filler, 0);
  c.unit_interval("data.multi_doc.copy_fraction", d.multi_doc.copy_fraction, /*hi_open=*/false);
  c.at_least("data.multi_doc.copy_min_length", d.multi_doc.copy_min_length, 2);
  if (c.error_count() == before_multi_doc) {  // the cross-field rules assume the ranges
    for (const FieldProblem& p : multi_doc_problems(d.multi_doc)) c.fail(p.fields, p.message);
  }
  c.at_least("data.corpus.sequence_length", d.corpus.sequence_length, 2);
  if (d.corpus.jsonl_field.empty()) c.fail({"data.corpus.jsonl_field"}, "data.corpus.jsonl_field is empty");
  c.at_least("data.corpus.bin_document_separator", d.corpus.bin_document_separator, -1);
}

}  // namespace

std::vector<std::string> validate(const GsaOptions& options, const ValueOrigins& origins) {
  Checker checker(origins);
  check_model(options.model, checker);
  check_gist(options.gist, checker);
  check_attention(options.attention, checker);
  check_train(options.train, checker);
  check_data(options.data, checker);
  check_cross(options, checker);
  return checker.take_errors();
}

}  // namespace gsa::config_detail
