"""A random checkpoint and the logits this package's PyTorch forward gives on it, for the equality test.

    python3 -m skiptrain.export_random --out DIR --ids 5,9,... --prompt P --keep 0,2,4,... [--dims recipe|small]

Writes DIR/config.json, DIR/model.safetensors and DIR/logits.json: ``full`` (every position at full
depth) and ``skipped`` (the first P positions at full depth, the rest through the ``--keep`` layers).
"""
from __future__ import annotations

import argparse
import json
import os

import torch

from . import safetensors_io
from .model import LlamaConfig, LlamaModel, init_weights
from .train import MODEL

SMALL = dict(vocab_size=96, hidden_size=48, intermediate_size=112, num_hidden_layers=5, num_attention_heads=4,
             num_key_value_heads=1, max_position_embeddings=64, rms_norm_eps=1e-6, rope_theta=500.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--ids", required=True)
    parser.add_argument("--prompt", type=int, required=True)
    parser.add_argument("--keep", required=True)
    parser.add_argument("--dims", choices=["recipe", "small"], default="recipe")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = LlamaConfig(**(MODEL if args.dims == "recipe" else SMALL))
    model = LlamaModel(config)
    # Larger than training's initialisation so that every layer visibly changes the logits.
    init_weights(model, args.seed, std=0.1)
    with torch.no_grad():
        for layer in model.layers:
            for norm in (layer.input_layernorm, layer.post_attention_layernorm):
                norm.weight.copy_(1 + 0.2 * torch.randn(norm.weight.shape, generator=torch.Generator().manual_seed(args.seed + 1)))
    ids = torch.tensor([[int(i) for i in args.ids.split(",")]])
    keep = [int(i) for i in args.keep.split(",")]
    run = torch.zeros(config.num_hidden_layers, ids.shape[1], dtype=torch.bool)
    run[:, : args.prompt] = True
    run[keep, args.prompt :] = True
    model.eval()
    with torch.no_grad():
        full, _ = model(ids)
        skipped, _ = model(ids, run)
    os.makedirs(args.out, exist_ok=True)
    safetensors_io.save(model.hf_state_dict(), os.path.join(args.out, "model.safetensors"))
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config.to_hf(bos_token_id=None, eos_token_id=0), f)
    with open(os.path.join(args.out, "logits.json"), "w") as f:
        json.dump({"full": full[0].tolist(), "skipped": skipped[0].tolist()}, f)


if __name__ == "__main__":
    main()
