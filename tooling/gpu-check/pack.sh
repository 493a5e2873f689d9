#!/usr/bin/env bash
# Packs everything the CUDA check needs on a GPU machine that reaches no
# registry: the CLI bundled into one file, the native packages it loads
# (onnxruntime-node for Linux x64, koffi, resvg), ONNX Runtime 1.29.0's CUDA provider
# (from the npm package com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9) and
# this machine's Node.js binary. The archive is split into parts small enough
# to travel one per call; run.sh puts them back together there.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/.gpu"
part_mb="${GPU_PART_MB:-44}"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cd "$root"

pnpm turbo run build --output-logs=errors-only
mkdir -p "$stage/app/node_modules" "$stage/provider" "$stage/node/bin"
pnpm exec esbuild apps/demo/src/cli.ts --bundle --platform=node --format=esm --target=node20 \
  --external:onnxruntime-node --external:koffi --external:@resvg/resvg-js \
  --banner:js="import { createRequire as __skipgenRequire } from 'node:module'; const require = __skipgenRequire(import.meta.url);" \
  --outfile="$stage/app/cli.mjs" --log-level=warning

# The native packages, Linux x64 only (onnxruntime-node ships every platform's binaries).
store="$root/node_modules/.pnpm"
ort="$store/onnxruntime-node@1.29.0/node_modules/onnxruntime-node"
mkdir -p "$stage/app/node_modules/onnxruntime-node/bin/napi-v6/linux"
cp -r "$ort/package.json" "$ort/dist" "$ort/lib" "$stage/app/node_modules/onnxruntime-node/"
cp -r "$ort/bin/napi-v6/linux/x64" "$stage/app/node_modules/onnxruntime-node/bin/napi-v6/linux/"
cp -r "$store/onnxruntime-common@1.29.0/node_modules/onnxruntime-common" "$stage/app/node_modules/"
cp -rL "$store/koffi@3.3.4/node_modules/koffi" "$stage/app/node_modules/"
mkdir -p "$stage/app/node_modules/@koromix" "$stage/app/node_modules/@resvg"
cp -r "$store/@koromix+koffi-linux-x64@3.3.4/node_modules/@koromix/koffi-linux-x64" "$stage/app/node_modules/@koromix/"
cp -rL "$store/@resvg+resvg-js@2.6.2/node_modules/@resvg/resvg-js" "$store/@resvg+resvg-js-linux-x64-gnu@2.6.2/node_modules/@resvg/resvg-js-linux-x64-gnu" "$stage/app/node_modules/@resvg/"

# The CUDA provider, from the npm registry.
(cd "$stage" && npm pack --silent com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 >/dev/null && tar xzf com.github.asus4.onnxruntime.linux-x64-gpu-0.4.9.tgz && rm ./*.tgz)
cp "$stage/package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so" "$stage/package/Plugins/Linux/x64/libonnxruntime_providers_shared.so" "$stage/provider/"
rm -rf "$stage/package"

cp "$(command -v node)" "$stage/node/bin/node"
cp "$root/tooling/gpu-check/run.sh" "$root/tooling/gpu-check/serve-check.mjs" "$stage/"

rm -rf "$out" && mkdir -p "$out"
tar -C "$stage" -cf - . | xz -T0 -6 | split -b "${part_mb}m" -d - "$out/bundle.tar.xz.part"
ls -l "$out"
