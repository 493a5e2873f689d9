#!/usr/bin/env bash
# The CUDA check, on a GPU machine: puts the parts pack.sh made back
# together (they may arrive over several calls into $GPU_PARTS), makes CUDA
# 13's libraries loadable, installs the CUDA provider next to
# onnxruntime-node's library and runs `skipgen gpu-check`.
set -euo pipefail
parts="${GPU_PARTS:-/tmp/skipgen-gpu/parts}"
home="${GPU_HOME:-/tmp/skipgen-gpu/bundle}"
if [ ! -x "$home/node/bin/node" ]; then
  mkdir -p "$home"
  cat "$parts"/bundle.tar.xz.part* | xz -d | tar -C "$home" -xf -
fi
export PATH="$home/node/bin:$PATH"
# CUDA 13's runtime, cuBLAS and cuRAND: the CUDA toolkit's, or the nvidia-* Python wheels'.
cuda_dirs="$(find /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /opt /usr/lib/python3* /usr/local/lib/python3* \
  \( -name 'libcudart.so.13' -o -name 'libcublas.so.13' -o -name 'libcublasLt.so.13' -o -name 'libcurand.so.10' \) -printf '%h\n' 2>/dev/null | sort -u | paste -sd:)"
export LD_LIBRARY_PATH="${cuda_dirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "node $(node --version); CUDA libraries from: ${cuda_dirs:-none found}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
node "$home/app/cli.mjs" cuda-setup --from "$home/provider"
mkdir -p "$home/work" && cd "$home/work"
status=0
node "$home/app/cli.mjs" gpu-check "$@" || status=$?
if [ "$status" -ge 128 ] && command -v cuda-gdb >/dev/null; then
  # A crash in native code: its backtrace, from the smallest run that shows it.
  model="$(ls -d .skipgen-cache/*-float16/model | head -1)"
  cuda-gdb -q -batch -ex run -ex bt --args "$(command -v node)" "$home/app/cli.mjs" generate --model "$model" --device cuda --prompt-ids 1,2,3 --max-new-tokens 2 2>&1 | tail -40
fi
if [ "$status" -eq 0 ] && [ -n "${GPU_SERVE_CHECK:-}" ]; then
  node "$home/serve-check.mjs" "$home/app/cli.mjs" "$home/work" "${GPU_SERVE_DEVICE:-cuda}" || status=$?
fi
exit "$status"
