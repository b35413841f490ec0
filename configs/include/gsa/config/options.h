// Typed options for every component, filled from a .pbtxt config (configs/proto/gsa_config.proto) by
// config_loader.h and validated once at start. Plain C++: no protobuf or LibTorch here, so every layer can
// include it. Each field says its default and its valid range; the loader enforces the ranges and names the
// file, line and field of a bad value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gsa {

enum class DType { kFloat32, kBFloat16 };

// Which Hugging Face architecture the weights follow (gsa export writes it as config.json "architectures").
enum class Architecture { kLlama, kQwen2 };

// RoPE frequency scaling: none, or Llama 3.1's "llama3" rope_scaling (low/high frequency bands, smooth between).
enum class RopeScaling { kNone, kLlama3 };

// The Llama-family decoder (RMSNorm, RoPE, SwiGLU, GQA); Qwen2 is the same with q/k/v projection biases.
struct ModelOptions {
  int64_t vocab_size = 264;          // > 0; must cover the tokenizer's ids, gist ids included
  int64_t hidden_size = 64;          // > 0; == num_heads * head_dim is NOT required (Llama allows either)
  int64_t intermediate_size = 176;   // > 0; SwiGLU width
  int64_t num_layers = 2;            // >= 1
  int64_t num_heads = 4;             // >= 1; query heads
  int64_t num_kv_heads = 1;          // >= 1; divides num_heads (GQA ratio = num_heads / num_kv_heads)
  int64_t head_dim = 16;             // >= 2, even (RoPE rotates pairs)
  double rope_theta = 10000.0;       // > 0
  double rms_norm_eps = 1e-5;        // > 0
  bool tie_embeddings = false;       // lm_head shares embed_tokens
  DType dtype = DType::kFloat32;     // parameters and activations; softmax and merges are always fp32
  double init_std = 0.02;            // > 0; std of the normal init of fresh weights
  Architecture architecture = Architecture::kLlama;  // kQwen2 needs attention_bias and head_dim = hidden/heads
  bool attention_bias = false;       // q/k/v projections have biases (Qwen2); o_proj and the MLP never do
  RopeScaling rope_scaling = RopeScaling::kNone;
  double rope_scaling_factor = 8.0;          // > 0; llama3: wavelengths above the low band are divided by it
  double rope_low_freq_factor = 1.0;         // > 0; llama3
  double rope_high_freq_factor = 4.0;        // > rope_low_freq_factor; llama3
  int64_t rope_original_max_position = 8192; // >= 1; llama3: the context length before scaling
  int64_t max_position_embeddings = 8192;    // >= 1; written to an exported config.json (no effect on compute)
  // Token ids of the gist levels 0, 1, ... (gsa import: the tokenizer's <gist>, <Gist>, <MGist>), each in
  // [0, vocab_size), distinct, at least gist.levels of them; empty = the byte tokenizer's gist ids.
  std::vector<int64_t> gist_token_ids;
};

// Where gist tokens go (method sections 3-4, DESIGN.md section 4.1).
struct GistOptions {
  int64_t sink = 3;           // >= 0; raw tokens at the start of each document that are never chunked
  int64_t chunk = 8;          // c0 >= 1; raw tokens per level-0 gist
  int64_t fanout = 4;         // c1 >= 2; level-(l-1) gists per level-l gist
  int64_t levels = 1;         // 1..4
  int64_t prev_chunks = 1;    // N >= 0; previous chunks (and sections) visible in the local window
  bool word_aware = false;    // shift a gist up to chunk/2 tokens forward to the next word start
};

enum class BudgetKind { kAdaptive, kFixed };

// Chunk selection (method section 8, DESIGN.md section 4.4).
struct SelectionOptions {
  bool enabled = true;                 // inference: suffix and decode queries select chunks
  int64_t first_selective_layer = 1;   // 0..model.num_layers-1; layers below it always use the gist mask
  BudgetKind budget = BudgetKind::kAdaptive;
  int64_t fixed_k = 4;                 // >= 1; chunks per head per level when budget == kFixed
  bool keep_unselected_gists = false;  // false (reference): unselected gists are dropped
};

// Which implementation runs GSA attention (runtime/attention.h).
//   kAuto:      the CUDA kernels for CUDA tensors they support (bf16/fp16, head dim 64/128, GQA 1/2/4/8),
//               the LibTorch reference path otherwise;
//   kReference: always the LibTorch reference path;
//   kKernels:   always the kernels (their CPU twin on CPU tensors); the reference path's per-block masks are
//               not built, so long prefills stay O(T) in memory; unsupported inputs are an error.
enum class AttentionBackend { kAuto, kReference, kKernels };

struct AttentionOptions {
  int64_t query_block = 0;             // >= 0; queries per block of the efficient path; 0 = automatic
  AttentionBackend backend = AttentionBackend::kAuto;
  // >= 0; the reference path builds its masks for this many queries at a time (bounded memory for long
  // prefills); 0 = automatic (about 64 MiB of masks per chunk)
  int64_t reference_chunk_queries = 0;
  // The kernels' backward without atomic adds (one work item per key tile, dq by its own pass over the tiles):
  // bitwise reproducible gradients, slower (load imbalance on the long gist-key lists, Q K^T recomputed for dq).
  bool deterministic = false;
  // Decode steps on CUDA replay a captured CUDA graph of the whole step (one launch instead of ~1,000; the same
  // kernels on the same inputs, so the same results); false runs every step eagerly.
  bool cuda_graphs = true;
  SelectionOptions selection;
};

enum class TrainMode { kCpt, kSelective };

struct TrainOptions {
  TrainMode mode = TrainMode::kSelective;  // cpt: gist mask everywhere; selective: suffix queries select
  int64_t steps = 300;          // >= 1
  int64_t batch_size = 16;      // >= 1 sequences per step
  double lr = 3e-3;             // > 0; peak AdamW learning rate
  double min_lr_ratio = 0.1;    // [0, 1]; cosine decays to lr * min_lr_ratio
  int64_t warmup_steps = 20;    // >= 0
  double decay_fraction = 1.0;  // [0, 1]; the cosine over this share of the steps after warmup, at the end; the
                                // peak held before it (warmup-stable-decay)
  double weight_decay = 0.0;    // >= 0
  double beta1 = 0.9;           // [0, 1)
  double beta2 = 0.98;          // [0, 1)
  double grad_clip = 1.0;       // >= 0; 0 disables clipping
  int64_t seed = 1234;          // model init and data
  int64_t log_every = 25;       // >= 1 steps between progress lines
  int64_t eval_batches = 4;     // >= 1 held-out batches for the accuracy report
  std::string output_dir;       // where checkpoints and metrics go; empty = none
  int64_t checkpoint_every = 0; // >= 0 steps between checkpoints (and one at the end); 0 = only at the end
  int64_t keep_checkpoints = 3; // >= 0 newest checkpoints kept in <output_dir>/checkpoints; 0 = keep all
  // >= 1, divides batch_size: each step runs batch_size / grad_accumulation rows at a time and sums the
  // gradients (the same update as the whole batch at once, in less activation memory)
  int64_t grad_accumulation = 1;
  // recompute each decoder layer in backward instead of keeping its activations (long contexts: memory for time)
  bool activation_checkpointing = false;
  // The weights AdamW updates. kFloat32 with model.dtype kBFloat16: fp32 master weights, the forward and backward
  // run on their bf16 copies (updates below bf16 resolution accumulate in the masters), checkpoints hold the
  // masters. Equal to model.dtype: the parameters are updated in place (pure bf16 when both are kBFloat16).
  // Never narrower than model.dtype (kBFloat16 with a kFloat32 model is refused).
  DType master_weights = DType::kFloat32;
};

// Synthetic key-value retrieval: the context lists `num_pairs` (key, value) pairs and is gisted; the raw
// suffix asks for one key and the model must answer its value.
struct RetrievalTaskOptions {
  int64_t num_pairs = 8;        // >= 1
  int64_t key_len = 2;          // >= 1 tokens per key
  int64_t value_len = 1;        // >= 1 tokens per value (the answer)
  int64_t alphabet = 16;        // 2..26 distinct symbols for keys and values
};

// Passkey retrieval: `filler_sentences` filler sentences with "The pass key is NNNNN. Remember it." at a random
// sentence boundary; the suffix asks for the key, whose `digits` digits are the answer.
struct PasskeyTaskOptions {
  int64_t filler_sentences = 16;  // >= 1
  int64_t digits = 5;             // 1..18
};

// Multi-document key-value retrieval: the gisted context is `documents` short documents of
// `pairs_per_document` (key, value) pairs each (distinct keys over all of them); one holds the key the suffix
// asks for, the others are distractors. With copy_fraction > 0 training also draws copy examples (an induction
// head's dense supervision); held-out scoring and gsa eval draw retrieval examples only. The cross-field rules
// are in gsa/config/multi_doc_rules.h; the text layout in trainer/synthetic_tasks.h.
struct MultiDocTaskOptions {
  int64_t documents = 8;           // >= 1
  int64_t pairs_per_document = 4;  // >= 1
  int64_t key_len = 3;             // >= 1 symbols per key
  int64_t value_len = 2;           // >= 1 symbols per value (the answer)
  // Key symbols: the first `alphabet` of a-z then A-Z. 2..26; up to 52 only with digit_values (else the
  // upper-case keys could be values). Values draw from the same first `alphabet` letters (upper-case with
  // upper_case_values) or from the 10 digits (digit_values).
  int64_t alphabet = 26;
  int64_t questions = 1;           // >= 1 questions in the suffix (distinct keys), each followed by its answer
  // >= 0; 0 = packed text; else every document header and every pair is padded with spaces to this many
  // characters (with the byte tokenizer, gist.sink 0 and gist.chunk = pair_width each pair fills one chunk)
  int64_t pair_width = 0;
  // >= 0; 0 = every example has `documents` documents; else each has a uniform count in [min_documents,
  // documents] (a mixture of short and long contexts: the short ones teach retrieval sooner)
  int64_t min_documents = 0;
  bool upper_case_values = false;  // values from the upper-case letters, keys from the lower-case ones
  bool compact = false;            // pairs "<key><value>;" and questions "?<key>" (no '='): the answer follows the key
  // Values are value_len decimal digits (chance 10^-value_len); keys may then use up to 52 symbols. Not with
  // upper_case_values.
  bool digit_values = false;
  // A document's pairs "<key><value>" back to back with no separator ("a7b3c9"), the block padded with spaces to
  // a multiple of pair_width (several pairs share a chunk, so a gist cannot bind a key to its value). Needs
  // compact and pair_width > 0 (each pair and the header fit in pair_width).
  bool packed_pairs = false;
  int64_t filler = 0;  // >= 0 '.' characters after each document's pairs (e.g. 48: 64-token documents)
  // [0, 1]: the probability that a training example is a copy example instead of a retrieval one: L random key
  // symbols (L uniform in [copy_min_length, copy_max_length]), "|", the same symbols again; the copied symbols
  // but the first (unpredictable in the raw-suffix form) are the answers. Varying L rules out a fixed offset,
  // so the model learns an induction head, which retrieval then reuses (docs/demo-experiments.md).
  double copy_fraction = 0;
  int64_t copy_min_length = 8;   // >= 2 symbols
  int64_t copy_max_length = 32;  // >= copy_min_length symbols
  // false: the whole copy example is the raw suffix (empty context: dense raw attention, as in the dense twin);
  // true: the first copy is the gisted context and "|" + the copy the suffix (the copy then trains selection)
  bool copy_in_context = false;
  // true: the copied symbols are drawn from the key symbols and the ten digits (with digit_values the retrieval
  // answers are digits, which a letters-only copy never teaches the induction head to copy); needs digit_values
  bool copy_digits = false;
};

enum class TokenFileDType { kUint16, kUint32 };

// A real corpus, tokenised (TEXT, JSONL) or already token ids (TOKEN_BIN), packed into rows of
// sequence_length raw tokens (trainer/corpus.h).
struct CorpusOptions {
  std::string path;                          // the file; required for TEXT, JSONL and TOKEN_BIN
  int64_t sequence_length = 512;             // >= 2 raw tokens per packed row (gists are added on top)
  std::string jsonl_field = "text";          // non-empty; the string field of each JSONL object
  TokenFileDType bin_dtype = TokenFileDType::kUint16;  // id width of a .bin file (little-endian)
  int64_t bin_document_separator = -1;       // >= -1; this id ends a document (nanoGPT: 50256); -1 = one stream
};

enum class DataSourceKind { kRetrieval, kPasskey, kMultiDoc, kText, kJsonl, kTokenBin };

struct DataOptions {
  DataSourceKind source = DataSourceKind::kRetrieval;
  std::string tokenizer;         // a tokenizer.json (runtime/hf_tokenizer.h); empty = the byte tokenizer
  int64_t examples_per_row = 1;  // >= 1; synthetic tasks: examples packed into one row as separate documents
  // >= 0; synthetic tasks: 0 = examples_per_row examples a row; else a row packs examples (separate documents)
  // while its raw tokens stay within row_tokens (at least one example; examples_per_row must be 1)
  int64_t row_tokens = 0;
  RetrievalTaskOptions retrieval;
  PasskeyTaskOptions passkey;
  MultiDocTaskOptions multi_doc;
  CorpusOptions corpus;
};

// The whole configuration of one run.
struct GsaOptions {
  ModelOptions model;
  GistOptions gist;
  AttentionOptions attention;
  TrainOptions train;
  DataOptions data;
};

}  // namespace gsa
