#!/usr/bin/env bash
# Reproduces the skip-aware training end to end (see README.md): data split and tokenizer,
# pretraining, the four fine-tunes, loss curves, the converted models of
# packages/model-tiny-shakespeare and their evaluation. Re-running resumes an
# interrupted run where it stopped.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
data="${SKIPTRAIN_DATA:-$root/../shared/data/tinyshakespeare.txt}"
work="${SKIPTRAIN_WORK:-$here/work}"
python=/usr/bin/python3
cd "$here"

"$python" -c 'import torch, numpy, matplotlib' 2>/dev/null || {
  echo "needs PyTorch, NumPy and Matplotlib from Debian: apt-get install python3-torch python3-numpy python3-matplotlib libopenblas0-pthread" >&2
  exit 1
}
(cd "$root" && pnpm --silent turbo run build --output-logs=errors-only >/dev/null)

[ -f "$work/tokenizer.json" ] || "$python" -m skiptrain.prepare --data "$data" --out "$work"
[ -f "$work/held-out.bin" ] || pnpm exec tsx src/encode-text.ts "$work" train.txt held-out.txt
pnpm exec tsx src/layer-plans.ts 12 256 2,3 > "$work/layer-plans.json"

[ -f "$work/base/checkpoint/model.safetensors" ] || "$python" -m skiptrain.train pretrain --work "$work"
for method in normal unified early-exit skipdecode; do
  [ -f "$work/$method/checkpoint/model.safetensors" ] || "$python" -m skiptrain.train finetune --work "$work" --method "$method"
done
"$python" -m skiptrain.plot --work "$work" --out "$here/results"

models="$root/packages/model-tiny-shakespeare/models"
mkdir -p "$models" "$work/converted"
node "$root/apps/demo/dist/cli.js" convert "$work/unified/checkpoint" "$models/skip-aware" --dtype fp16 --overwrite
node "$root/apps/demo/dist/cli.js" convert "$work/normal/checkpoint" "$models/normal" --dtype fp16 --overwrite
# The skip-aware checkpoint ships too, rounded to float16 (the rounding --weights fp16 applies).
"$python" -m skiptrain.export_fp16 --checkpoint "$work/unified/checkpoint" --out "$root/packages/model-tiny-shakespeare/checkpoints/skip-aware"
for method in early-exit skipdecode; do
  node "$root/apps/demo/dist/cli.js" convert "$work/$method/checkpoint" "$work/converted/$method" --dtype fp16 --overwrite
done
# The paper's Table 4 at small scale: every method on every fine-tune, 1x/2x/3x, on the held-out text.
results="$root/packages/model-tiny-shakespeare/results"
mkdir -p "$results"
node "$root/apps/demo/dist/cli.js" eval \
  --model "skip-aware=$models/skip-aware" --model "normal=$models/normal" \
  --model "early-exit=$work/converted/early-exit" --model "skipdecode=$work/converted/skipdecode" \
  --text "$work/held-out.txt" --targets 2,3 --chart "$results/quality" --json > "$results/eval.json"
# Quantized weights: the skip-aware checkpoint at fp32, int8 and int4 (block 32, zero points, int8 head), and int4 with a
# float16 head, unified only.
checkpoint="$root/packages/model-tiny-shakespeare/checkpoints/skip-aware"
for weights in fp32 int8 int4; do
  node "$root/apps/demo/dist/cli.js" convert "$checkpoint" "$work/converted/skip-aware-$weights" --weights "$weights" --overwrite
done
node "$root/apps/demo/dist/cli.js" convert "$checkpoint" "$work/converted/skip-aware-int4-f16head" --weights int4 --head-weights float16 --overwrite
node "$root/apps/demo/dist/cli.js" eval \
  --model "skip-aware-fp32=$work/converted/skip-aware-fp32" --model "skip-aware-int8=$work/converted/skip-aware-int8" \
  --model "skip-aware-int4=$work/converted/skip-aware-int4" --model "skip-aware-int4-float16-head=$work/converted/skip-aware-int4-f16head" \
  --text "$work/held-out.txt" --policies unified --targets 2,3 --json > "$results/quantized.json"
echo "done: models in $models, loss curves in $here/results, evaluation in $results"
