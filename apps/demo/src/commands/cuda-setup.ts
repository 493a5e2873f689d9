import { Command } from 'commander';

import { CUDA_PROVIDER_PACKAGE, installCudaProvider } from '@skipgen/core';

export function cudaSetupCommand(): Command {
  return new Command('cuda-setup')
    .description(`install ONNX Runtime's CUDA provider libraries next to onnxruntime-node's (from ${CUDA_PROVIDER_PACKAGE}, or a directory)`)
    .option('--from <dir>', 'a directory holding libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so')
    .action(async (flags: { from?: string }) => {
      const installed = await installCudaProvider(flags.from);
      console.log(`installed ${installed.files.join(', ')} (${(installed.bytes / 1e6).toFixed(0)} MB) from ${installed.from} into ${installed.to}`);
      console.log("CUDA 13's libcudart.so.13, libcublas.so.13, libcublasLt.so.13 and libcurand.so.10 must be loadable (LD_LIBRARY_PATH); then: --device cuda with a model converted with --compute float16");
    });
}
