#!/usr/bin/env python3
"""Reference logits from Hugging Face transformers' LlamaForCausalLM, for our C++ Llama to match.

Usage: hf_llama_oracle.py --out DIR [--case NAME ...]     (default: every case; CPU only, deterministic)

For each case NAME (see CASES) it writes:

  DIR/NAME/config.json          the HF config dict (LlamaConfig.to_dict(), sorted keys). With transformers 5.x
                                rope_theta sits in "rope_parameters": {"rope_theta": ..., "rope_type": "default"};
                                with 4.x it is the top-level "rope_theta".
  DIR/NAME/model.safetensors    the weights, float64 (dtype F64), HF tensor names:
                                  model.embed_tokens.weight                         [vocab, hidden]
                                  model.layers.{i}.self_attn.{q,k,v,o}_proj.weight  [out, in] (nn.Linear layout)
                                  model.layers.{i}.mlp.{gate,up,down}_proj.weight   [out, in]
                                  model.layers.{i}.{input,post_attention}_layernorm.weight  [hidden]
                                  model.norm.weight                                 [hidden]
                                  lm_head.weight                                    [vocab, hidden]
                                No bias tensors (attention_bias = mlp_bias = False). When tie_word_embeddings is
                                true, lm_head.weight is NOT in the file (it is model.embed_tokens.weight, which
                                is how HF's save_pretrained writes tied checkpoints); the file's metadata says
                                {"lm_head": "tied"} or {"lm_head": "saved"}.
  DIR/NAME/oracle.safetensors   input_ids  I64 [2, 37]       uniform in [0, 256)
                                logits     F64 [2, 37, 264]  LlamaForCausalLM(input_ids).logits, float64 model,
                                                             no attention mask (causal), positions 0..36.

The model is built with attn_implementation="eager" after torch.manual_seed(0); every weight is then redrawn
(in model.parameters() order): projection and embedding weights from N(0, 0.1), RMSNorm weights from
1 + N(0, 0.1), and the model is converted to float64. (With N(0, 0.1) norm weights the logits shrink to std ~0.09
and switching RoPE off moves them by only ~8e-4; with 1 + N(0, 0.1) they have std ~0.8 and RoPE off moves them
by ~2.5, so a RoPE or attention bug cannot hide under the tolerance.)
Note: HF still computes RMSNorm statistics, the RoPE angles and the attention softmax in float32 inside the
float64 model, so these logits are exact only to about float32 precision in those steps.
Prints one line per case. Exits 77 (ctest: Skipped) when torch, transformers or safetensors is missing.
"""
import argparse
import json
import os
import sys
import time

try:
    import torch
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM
except ImportError as error:  # ctest reports exit code 77 as Skipped (SKIP_RETURN_CODE)
    print(f"hf_llama_oracle: skipped, {error}")
    sys.exit(77)

BATCH, SEQ_LEN, INPUT_VOCAB = 2, 37, 256
WEIGHT_STD = 0.1

COMMON = dict(
    vocab_size=264,
    hidden_size=64,
    intermediate_size=176,
    num_hidden_layers=2,
    num_attention_heads=4,
    head_dim=16,
    rms_norm_eps=1e-5,
    attention_bias=False,
    mlp_bias=False,
    max_position_embeddings=4096,
    hidden_act="silu",
)

CASES = {
    "gqa": dict(COMMON, num_key_value_heads=2, rope_theta=10000.0, tie_word_embeddings=False),
    "tied": dict(COMMON, num_key_value_heads=1, rope_theta=500000.0, tie_word_embeddings=True),
}


def build_model(params):
    torch.manual_seed(0)
    config = LlamaConfig(**params, attn_implementation="eager")
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():  # tied weights are one Parameter: drawn once
            parameter.normal_(1.0 if name.endswith("norm.weight") else 0.0, WEIGHT_STD)
    model = model.to(torch.float64)
    tied = model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    if tied != params["tie_word_embeddings"]:
        sys.exit(f"hf_llama_oracle: tie_word_embeddings={params['tie_word_embeddings']} but tied={tied}")
    return model, tied


def run_case(out_dir, name):
    start = time.time()
    params = CASES[name]
    model, tied = build_model(params)
    case_dir = os.path.join(out_dir, name)
    os.makedirs(case_dir, exist_ok=True)

    state = {key: value.detach().contiguous() for key, value in model.state_dict().items()}
    if tied:
        state.pop("lm_head.weight", None)  # shared storage; HF checkpoints omit it
    save_file(state, os.path.join(case_dir, "model.safetensors"),
              metadata={"format": "pt", "lm_head": "tied" if tied else "saved"})
    with open(os.path.join(case_dir, "config.json"), "w") as f:
        json.dump(model.config.to_dict(), f, indent=2, sort_keys=True, default=str)
        f.write("\n")

    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(0, INPUT_VOCAB, (BATCH, SEQ_LEN), generator=generator, dtype=torch.int64)
    with torch.no_grad():
        logits = model(input_ids=input_ids, use_cache=False).logits
    assert logits.dtype == torch.float64 and logits.shape == (BATCH, SEQ_LEN, params["vocab_size"])
    save_file({"input_ids": input_ids, "logits": logits.contiguous()}, os.path.join(case_dir, "oracle.safetensors"),
              metadata={"case": name})
    print(f"hf_llama_oracle: {name}: {len(state)} tensors (lm_head {'tied' if tied else 'saved'}), "
          f"logits {tuple(logits.shape)} std {logits.std().item():.4f} max|.| {logits.abs().max().item():.4f} "
          f"-> {case_dir} ({time.time() - start:.1f}s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output folder; one subfolder per case")
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="case to write (repeatable)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.case or sorted(CASES):
        run_case(args.out, name)


if __name__ == "__main__":
    main()
