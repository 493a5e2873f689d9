"""Split Tiny Shakespeare (last 10% held out) and train the BPE tokenizer on the training part."""
from __future__ import annotations

import argparse
import json
import os

from . import bpe

VOCAB_SIZE = 1024
HELD_OUT = 0.10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="tinyshakespeare.txt")
    parser.add_argument("--out", required=True, help="work directory")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    text = open(args.data, encoding="utf-8").read()
    cut = int(len(text) * (1 - HELD_OUT))
    # Cut at a line start so the held-out text begins cleanly.
    cut = text.index("\n", cut) + 1
    train, held_out = text[:cut], text[cut:]
    with open(os.path.join(args.out, "train.txt"), "w", encoding="utf-8") as f:
        f.write(train)
    with open(os.path.join(args.out, "held-out.txt"), "w", encoding="utf-8") as f:
        f.write(held_out)
    vocab, merges = bpe.train(train, VOCAB_SIZE)
    with open(os.path.join(args.out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(bpe.tokenizer_json(vocab, merges), f, ensure_ascii=False)
    with open(os.path.join(args.out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(bpe.tokenizer_config(), f, indent=2)
    print(f"train {len(train)} characters, held out {len(held_out)}; BPE vocabulary {len(vocab)} ({len(merges)} merges)")


if __name__ == "__main__":
    main()
