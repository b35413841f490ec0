// Hugging Face model directories <-> gsa checkpoints: `gsa import --hf DIR` and `gsa export` (issue 9).
//
// Import (read_hf_model / import_hf_model) of DIR = config.json, the weights, tokenizer.json (and optionally
// tokenizer_config.json, which gives the tokenizer its BOS/EOS):
// - config.json: "architectures" is ["LlamaForCausalLM"] or ["Qwen2ForCausalLM"]; anything else is an error
//   naming it and the supported ones. Required keys: vocab_size, hidden_size, intermediate_size,
//   num_hidden_layers, num_attention_heads, num_key_value_heads, rms_norm_eps, max_position_embeddings,
//   tie_word_embeddings and the RoPE base (rope_theta, or rope_parameters.rope_theta as transformers 5 writes).
//   Optional, with transformers' defaults: head_dim (hidden_size / num_attention_heads), hidden_act ("silu"
//   only), RoPE scaling in rope_scaling or rope_parameters (rope_type "default" or "llama3" only), Llama's
//   attention_bias and mlp_bias (false only), Qwen2's use_sliding_window (false only). Qwen2 has q/k/v biases.
//   A missing or mistyped key is an error naming the file and the key.
// - weights: model.safetensors.index.json ("weight_map": tensor -> shard file) and every shard it names, or one
//   model.safetensors. A shard the index names that is missing, a tensor in a shard that the index does not map
//   to that shard (or maps elsewhere), a tensor the index maps that its shard lacks, a tensor of a non-floating
//   dtype (F32, F16, BF16 and F64 are read), a missing, misshapen or unexpected tensor for the config: each is an
//   error naming the file and the tensor. "...rotary_emb.inv_freq" buffers of old checkpoints are dropped.
// - dtype of the checkpoint: options.dtype when set, else bf16 when every weight is BF16, fp32 otherwise.
// - gist tokens: the tokenizer's (HfTokenizer: <gist> <Gist> <MGist>, plus <gist3> for 4 levels; those the file
//   lacks get the first free ids after its vocabulary). The vocabulary grows to cover them; the embedding and
//   (untied) lm_head rows of every gist token the file did not already have are set to the mean of the rows of
//   the ids below the first such gist id (the pretrained tokens: Llama-3 0..128255, Qwen2 0..151645 even though
//   Qwen2's embedding has padding rows above), as the reference initialises them. A tokenizer with ids beyond
//   the config's vocab_size other than those gist tokens is an error.
// - the checkpoint: step 0, model.safetensors in the chosen dtype, config.pbtxt (the default options with this
//   model, model.gist_token_ids = the tokenizer's gist ids, and the given gist options), tokenizer.json copied
//   unchanged. import_hf_model writes it with CheckpointStore into `out` (which must not exist or be empty).
//
// Export (export_hf_model) of a checkpoint that has gist token ids (an imported one, or trained from one):
// - config.json from the model options (the architecture, dims, RoPE with legacy rope_theta / rope_scaling keys,
//   tie_word_embeddings, torch_dtype, bos/eos ids of the tokenizer);
// - the weights in the checkpoint's dtype with metadata {"format": "pt"}, cut in name order into shards of at
//   most max_shard_bytes (a tensor larger than that gets a shard of its own): one file model.safetensors, or
//   model-0000i-of-0000N.safetensors with model.safetensors.index.json (metadata.total_size, weight_map);
// - tokenizer.json: the checkpoint's (or options.tokenizer_path) with every gist token it lacks added as a
//   special added token at the id in model.gist_token_ids (which must be the ids HfTokenizer assigns).
// transformers' AutoModelForCausalLM.from_pretrained and AutoTokenizer load the folder.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "gsa/config/options.h"
#include "gsa/runtime/checkpoint.h"

namespace gsa {

struct HfImportOptions {
  GistOptions gist;            // written to the checkpoint's config (levels decides how many gist ids it needs)
  std::optional<DType> dtype;  // unset: from the weights
};

// The checkpoint of Hugging Face directory `dir`, in memory (step 0).
Checkpoint read_hf_model(const std::string& dir, const HfImportOptions& options);
// read_hf_model, saved under `out` (a checkpoint store: out/step-000000 and out/latest); returns the step folder.
std::string import_hf_model(const std::string& dir, const std::string& out, const HfImportOptions& options);

struct HfExportOptions {
  int64_t max_shard_bytes = int64_t(5) << 30;  // >= 1
  std::string tokenizer_path;                  // a tokenizer.json to use when the checkpoint has none
};

// Writes the checkpoint at `checkpoint_path` (resolve_checkpoint) as a Hugging Face folder `out` (which must not
// exist or be empty).
void export_hf_model(const std::string& checkpoint_path, const std::string& out, const HfExportOptions& options);

}  // namespace gsa
