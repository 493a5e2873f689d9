"""Writes a float16 copy of a checkpoint the recipe trained, for shipping.

    python3 -m skiptrain.export_fp16 --checkpoint work/unified/checkpoint --out ../../packages/model-tiny-shakespeare/checkpoints/skip-aware

The weights are rounded to the nearest float16 (torch's `half()`, round to
nearest even: what `skipgen convert --weights fp16` does to float32 weights), so
the copy converts to exactly the graphs the float32 checkpoint converts to
with `--weights fp16`, at half the size. config.json says `torch_dtype: float16`;
the tokenizer, generation config and recipe are copied as they are.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil

from .safetensors_io import load, save

COPIED = ("generation_config.json", "tokenizer.json", "tokenizer_config.json", "recipe.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a float32 checkpoint directory written by skiptrain.train")
    parser.add_argument("--out", required=True, help="directory to write (created; its files are replaced)")
    args = parser.parse_args()

    os.makedirs(args.out, exist_ok=True)
    tensors = {name: tensor.half() for name, tensor in load(os.path.join(args.checkpoint, "model.safetensors")).items()}
    save(tensors, os.path.join(args.out, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(args.checkpoint, "config.json")) as f:
        config = json.load(f)
    config["torch_dtype"] = "float16"
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    for name in COPIED:
        source = os.path.join(args.checkpoint, name)
        if os.path.exists(source):
            shutil.copyfile(source, os.path.join(args.out, name))
    print(f"wrote {len(tensors)} float16 tensors to {args.out}")


if __name__ == "__main__":
    main()
