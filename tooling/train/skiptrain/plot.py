"""Loss curves of the pretraining and the fine-tunes, as PNG (Matplotlib), from each run's loss.csv."""
from __future__ import annotations

import argparse
import csv
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RUNS = ("base", "normal", "unified", "early-exit", "skipdecode")


def read(path: str) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    logs = {run: read(os.path.join(args.work, run, "loss.csv")) for run in RUNS if os.path.exists(os.path.join(args.work, run, "loss.csv"))}

    figure, (pretrain, finetune) = plt.subplots(1, 2, figsize=(12, 4.5))
    if "base" in logs:
        rows = logs["base"]
        steps = [int(r["step"]) for r in rows]
        pretrain.plot(steps, [float(r["train_loss"]) for r in rows], label="train")
        pretrain.plot(steps, [float(r["held_out_full"]) for r in rows], label="held out")
        pretrain.set_title("pretraining (full depth)")
    for run, rows in logs.items():
        if run == "base":
            continue
        steps = [int(r["step"]) for r in rows]
        line = finetune.plot(steps, [float(r["held_out_full"]) for r in rows], label=f"{run}: held out, full depth")[0]
        for column, style in (("held_out_2x", "--"), ("held_out_3x", ":")):
            values = [r[column] for r in rows]
            if all(values):
                finetune.plot(steps, [float(v) for v in values], style, color=line.get_color(), label=f"{run}: held out, {column[-2:]}")
    finetune.set_title("fine-tunes from the base (held-out loss)")
    for axis in (pretrain, finetune):
        axis.set_xlabel("step")
        axis.set_ylabel("cross-entropy (nats/token)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(os.path.join(args.out, "loss-curves.png"), dpi=120)
    for run, rows in logs.items():
        with open(os.path.join(args.out, f"loss-{run}.csv"), "w") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
            writer.writeheader()
            writer.writerows(rows)
    print(f"wrote {os.path.join(args.out, 'loss-curves.png')}")


if __name__ == "__main__":
    main()
