"""Pretraining and the per-method fine-tunes (the paper's Table 4 setting at small scale).

    python3 -m skiptrain.train pretrain --work W
    python3 -m skiptrain.train finetune --work W --method normal|unified|early-exit|skipdecode
    python3 -m skiptrain.train finetune --work W --method draft     # from the unified fine-tune

Every run logs ``loss.csv`` and writes a Hugging Face checkpoint (config.json, model.safetensors,
tokenizer files) that ``skipgen convert`` reads. A run saves ``state.pt`` every ``save_every`` steps
and resumes from it when started again.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import time

import numpy as np
import torch
import torch.nn.functional as F

from . import safetensors_io
from .model import LlamaConfig, LlamaModel, init_weights

MODEL = dict(
    vocab_size=1024,
    hidden_size=128,
    intermediate_size=384,
    num_hidden_layers=12,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=512,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
)
SEQUENCE = 512
BATCH = 8
PRETRAIN = dict(steps=700, lr=2e-3, min_lr=2e-4, warmup=50, seed=1234)
FINETUNE = dict(steps=100, lr=5e-4, min_lr=5e-5, warmup=10, seed=4321)
WEIGHT_DECAY = 0.1
BETAS = (0.9, 0.95)
CLIP = 1.0
EVAL_EVERY = 50
EVAL_BATCHES = 8
SAVE_EVERY = 50
# Skip-aware fine-tunes: each batch draws one target from these (uniformly), and one prompt length
# from PROMPT_RANGE: the prompt runs at full depth, the rest of the sequence through the method's layers.
TARGETS = (1, 2, 3)
PROMPT_RANGE = (16, 256)
METHODS = ("normal", "unified", "early-exit", "skipdecode", "draft")
# `draft` continues from the `unified` fine-tune and teaches its skip paths to agree with its full depth (self-distillation),
# which is what self-speculative decoding needs: drafts that full depth accepts.
INIT_FROM = {"draft": os.path.join("unified", "checkpoint")}
END_OF_TEXT = 0


def lr_at(step: int, schedule: dict) -> float:
    if step < schedule["warmup"]:
        return schedule["lr"] * (step + 1) / schedule["warmup"]
    progress = (step - schedule["warmup"]) / max(1, schedule["steps"] - schedule["warmup"])
    return schedule["min_lr"] + 0.5 * (schedule["lr"] - schedule["min_lr"]) * (1 + math.cos(math.pi * progress))


class Batches:
    """Random windows of the token stream, from a seeded generator (the same windows for every method)."""

    def __init__(self, ids: np.ndarray, seed: int):
        self.ids = torch.from_numpy(ids.astype(np.int64))
        self.generator = torch.Generator().manual_seed(seed)

    def next(self) -> torch.Tensor:
        starts = torch.randint(0, len(self.ids) - SEQUENCE - 1, (BATCH,), generator=self.generator)
        return torch.stack([self.ids[s : s + SEQUENCE + 1] for s in starts.tolist()])


class SkipPattern:
    """The ``run[layer, position]`` mask of one method for one batch, from skipgen's own layer plans."""

    def __init__(self, method: str, plans: dict, seed: int):
        self.method = method
        self.layers = plans["numLayers"]
        self.by_target = {1: None, **{p["target"]: p for p in plans["targets"]}}
        self.probes = plans["earlyExit"]["probeLayers"]
        self.generator = torch.Generator().manual_seed(seed + 1)

    def draw(self) -> torch.Tensor | None:
        if self.method not in ("unified", "skipdecode", "draft"):
            return None
        target = TARGETS[int(torch.randint(0, len(TARGETS), (1,), generator=self.generator))]
        prompt = int(torch.randint(PROMPT_RANGE[0], PROMPT_RANGE[1] + 1, (1,), generator=self.generator))
        return self.mask(target, prompt, SEQUENCE)

    def mask(self, target: int, prompt: int, length: int) -> torch.Tensor | None:
        plan = self.by_target[target]
        if plan is None:
            return None
        run = torch.zeros(self.layers, length, dtype=torch.bool)
        run[:, :prompt] = True
        if self.method in ("unified", "draft"):
            run[plan["unified"], prompt:] = True
        else:
            per_position = plan["skipdecode"]["perPosition"]
            for t in range(prompt, length):
                run[per_position[min(t - prompt, len(per_position) - 1)], t] = True
        return run


def loss_of(model: LlamaModel, batch: torch.Tensor, run, probes: list[int]) -> torch.Tensor:
    inputs, targets = batch[:, :-1], batch[:, 1:]
    logits, probe_logits = model(inputs, run, probes)
    vocab = logits.shape[-1]
    loss = F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))
    if not probes:
        return loss
    # CALM's objective: the head's loss after every layer, weighted by depth (layer i+1 weighs i+1).
    weights = {layer: layer + 1 for layer in probes}
    weights[model.config.num_hidden_layers - 1] = model.config.num_hidden_layers
    total = loss * weights[model.config.num_hidden_layers - 1]
    for layer, out in probe_logits.items():
        total = total + weights[layer] * F.cross_entropy(out.reshape(-1, vocab), targets.reshape(-1))
    return total / sum(weights.values())


def distillation_loss(model: LlamaModel, batch: torch.Tensor, run: torch.Tensor | None) -> torch.Tensor:
    """Full depth's own loss, plus KL(full depth ‖ skip path) where the skip path runs (full depth is the detached teacher)."""
    inputs, targets = batch[:, :-1], batch[:, 1:]
    full, _ = model(inputs)
    vocab = full.shape[-1]
    loss = F.cross_entropy(full.reshape(-1, vocab), targets.reshape(-1))
    if run is None:
        return loss
    skipped, _ = model(inputs, run)
    teacher = F.log_softmax(full.detach(), dim=-1)
    student = F.log_softmax(skipped, dim=-1)
    # Prompt positions run every layer, so they add nothing; average over the positions that skip.
    skipping = ~run.all(dim=0)
    kl = (teacher.exp() * (teacher - student)).sum(-1)[:, skipping].mean()
    return loss + kl


@torch.no_grad()
def held_out_losses(model: LlamaModel, held_out: np.ndarray, pattern: SkipPattern | None) -> dict[str, float]:
    """Full-depth held-out loss, and for skip methods the loss at 2x and 3x with a 256-token prompt."""
    model.eval()
    batches = Batches(held_out, seed=99)
    windows = [batches.next() for _ in range(EVAL_BATCHES)]
    out = {}
    settings = [("full", None)]
    if pattern is not None and pattern.method in ("unified", "skipdecode", "draft"):
        settings += [(f"{t}x", pattern.mask(t, PROMPT_RANGE[1], SEQUENCE)) for t in TARGETS if t > 1]
    for name, run in settings:
        losses = []
        for w in windows:
            logits, _ = model(w[:, :-1], run)
            scored = slice(PROMPT_RANGE[1], None) if run is not None else slice(None)
            losses.append(F.cross_entropy(logits[:, scored].reshape(-1, logits.shape[-1]), w[:, 1:][:, scored].reshape(-1)).item())
        out[name] = float(np.mean(losses))
    model.train()
    return out


def write_checkpoint(model: LlamaModel, work: str, out: str, recipe: dict) -> None:
    os.makedirs(out, exist_ok=True)
    safetensors_io.save(model.hf_state_dict(), os.path.join(out, "model.safetensors"), {"format": "pt"})
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(model.config.to_hf(bos_token_id=None, eos_token_id=END_OF_TEXT), f, indent=2)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"eos_token_id": END_OF_TEXT, "do_sample": False}, f, indent=2)
    with open(os.path.join(out, "recipe.json"), "w") as f:
        json.dump(recipe, f, indent=2)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(work, name), os.path.join(out, name))


def run(work: str, name: str, method: str, schedule: dict, init_from: str | None) -> None:
    torch.manual_seed(schedule["seed"])
    torch.set_num_threads(int(os.environ.get("SKIPTRAIN_THREADS", os.cpu_count() or 1)))
    out = os.path.join(work, name)
    os.makedirs(out, exist_ok=True)
    config = LlamaConfig(**MODEL)
    model = LlamaModel(config)
    if init_from:
        weights = safetensors_io.load(os.path.join(work, init_from, "model.safetensors"))
        model.load_state_dict({k.removeprefix("model."): v for k, v in weights.items()})
    else:
        init_weights(model, schedule["seed"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=schedule["lr"], betas=BETAS, weight_decay=WEIGHT_DECAY)
    train_ids = np.fromfile(os.path.join(work, "train.bin"), dtype=np.uint16)
    held_out = np.fromfile(os.path.join(work, "held-out.bin"), dtype=np.uint16)
    with open(os.path.join(work, "layer-plans.json")) as f:
        plans = json.load(f)
    pattern = SkipPattern(method, plans, schedule["seed"])
    probes = pattern.probes if method == "early-exit" else []
    batches = Batches(train_ids, schedule["seed"])
    state_path = os.path.join(out, "state.pt")
    log_path = os.path.join(out, "loss.csv")
    start, elapsed = 0, 0.0
    if os.path.exists(state_path):
        state = torch.load(state_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        batches.generator.set_state(state["batches"])
        pattern.generator.set_state(state["pattern"])
        start, elapsed = state["step"], state["elapsed"]
        print(f"{name}: resuming at step {start}", flush=True)
    else:
        with open(log_path, "w") as f:
            f.write("step,train_loss,held_out_full,held_out_2x,held_out_3x,lr,seconds\n")
    recipe = {"name": name, "method": method, "init_from": init_from, "model": MODEL, "sequence": SEQUENCE, "batch": BATCH,
              "schedule": schedule, "weight_decay": WEIGHT_DECAY, "betas": BETAS, "clip": CLIP, "targets": TARGETS,
              "prompt_range": PROMPT_RANGE, "probe_layers": probes, "parameters": sum(p.numel() for p in model.parameters())}
    model.train()
    window = []
    began = time.time() - elapsed
    for step in range(start, schedule["steps"]):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, schedule)
        run_mask = pattern.draw()
        batch = batches.next()
        loss = distillation_loss(model, batch, run_mask) if method == "draft" else loss_of(model, batch, run_mask, probes)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()
        window.append(loss.item())
        done = step + 1
        if done % EVAL_EVERY == 0 or done == schedule["steps"]:
            losses = held_out_losses(model, held_out, pattern)
            seconds = time.time() - began
            with open(log_path, "a") as f:
                f.write(f"{done},{np.mean(window):.4f},{losses['full']:.4f},{losses.get('2x', '')},{losses.get('3x', '')},{lr_at(step, schedule):.6f},{seconds:.0f}\n")
            print(f"{name} step {done}/{schedule['steps']} train {np.mean(window):.3f} held-out {losses} {seconds:.0f}s", flush=True)
            window = []
        if done % SAVE_EVERY == 0 or done == schedule["steps"]:
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "batches": batches.generator.get_state(),
                        "pattern": pattern.generator.get_state(), "step": done, "elapsed": time.time() - began}, state_path)
    recipe["seconds"] = round(time.time() - began)
    recipe["tokens"] = schedule["steps"] * BATCH * SEQUENCE
    write_checkpoint(model, work, os.path.join(out, "checkpoint"), recipe)
    print(f"{name}: done in {recipe['seconds']} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("phase", choices=["pretrain", "finetune"])
    parser.add_argument("--work", required=True)
    parser.add_argument("--method", choices=METHODS)
    args = parser.parse_args()
    if args.phase == "pretrain":
        run(args.work, "base", "normal", PRETRAIN, None)
    else:
        if not args.method:
            parser.error("finetune needs --method")
        run(args.work, args.method, args.method, FINETUNE, INIT_FROM.get(args.method, os.path.join("base", "checkpoint")))


if __name__ == "__main__":
    main()
