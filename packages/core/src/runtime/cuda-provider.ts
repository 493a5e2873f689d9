import { copyFile, mkdir, readdir, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import { CudaUnavailableError, InvalidRequestError } from '../errors.js';
import { onnxRuntimeNodeLibraryDir } from './c-api/ort-c-api.js';

/**
 * The npm package whose CUDA provider matches the pinned ONNX Runtime
 * (`PINNED_ORT_VERSION`) exactly: ONNX Runtime 1.29.0's CUDA execution provider built against
 * CUDA 13 (it links libcudart.so.13, libcublas.so.13, libcublasLt.so.13 and
 * libcurand.so.10). A provider library must come from the same ONNX Runtime
 * release as the core library that loads it.
 */
export const CUDA_PROVIDER_PACKAGE = 'com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9';
const PACKAGE_NAME = 'com.github.asus4.onnxruntime.linux-x64-gpu';
const PACKAGE_LIBRARY_DIR = join('Plugins', 'Linux', 'x64');
/** The libraries ONNX Runtime loads for the CUDA execution provider, from the directory of its core library. */
export const CUDA_PROVIDER_FILES = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'] as const;

/** What {@link installCudaProvider} did. */
export interface CudaProviderInstall {
  /** Where the libraries came from. */
  from: string;
  /** onnxruntime-node's library directory, where ONNX Runtime looks for providers. */
  to: string;
  files: string[];
  bytes: number;
}

/**
 * Installs ONNX Runtime's CUDA provider libraries next to onnxruntime-node's
 * own library, where ONNX Runtime loads providers from (and where
 * onnxruntime-node's install script would have put them, had it been able
 * to download them). `from` is a directory holding the two libraries, or
 * left out to take them from the npm package {@link CUDA_PROVIDER_PACKAGE}
 * when it is installed. `to` is for tests.
 */
export async function installCudaProvider(from?: string, to: string = onnxRuntimeNodeLibraryDir()): Promise<CudaProviderInstall> {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new CudaUnavailableError(`skipgen's CUDA setup supports Linux x64 only; this is ${process.platform} ${process.arch}`);
  }
  const source = from ?? providerPackageDir();
  const present = await readdir(source).catch(() => {
    throw new InvalidRequestError('from', `${source} is not a readable directory`);
  });
  const missing = CUDA_PROVIDER_FILES.filter((file) => !present.includes(file));
  if (missing.length > 0) throw new InvalidRequestError('from', `${source} lacks ${missing.join(' and ')}`);
  await mkdir(to, { recursive: true });
  let bytes = 0;
  for (const file of CUDA_PROVIDER_FILES) {
    await copyFile(join(source, file), join(to, file));
    bytes += (await stat(join(to, file))).size;
  }
  return { from: source, to, files: [...CUDA_PROVIDER_FILES], bytes };
}

function providerPackageDir(): string {
  try {
    const manifest = createRequire(join(onnxRuntimeNodeLibraryDir(), 'resolve-from-here.js')).resolve(`${PACKAGE_NAME}/package.json`);
    return join(dirname(manifest), PACKAGE_LIBRARY_DIR);
  } catch {
    try {
      const manifest = createRequire(join(process.cwd(), 'package.json')).resolve(`${PACKAGE_NAME}/package.json`);
      return join(dirname(manifest), PACKAGE_LIBRARY_DIR);
    } catch {
      throw new InvalidRequestError(
        'from',
        `the provider libraries were not given and the npm package ${CUDA_PROVIDER_PACKAGE} is not installed; ` +
          `install it (npm install ${CUDA_PROVIDER_PACKAGE}) or pass the directory holding ${CUDA_PROVIDER_FILES.join(' and ')}`,
      );
    }
  }
}
