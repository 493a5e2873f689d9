import { stat } from 'node:fs/promises';
import { join } from 'node:path';

import { ModelGraphError } from '../errors.js';
import { graphIoProblem, type GraphRole } from '../format/graph-shapes.js';
import type { ModelManifest } from '../format/manifest.js';
import { createRuntime } from '../runtime/create-runtime.js';
import { openOnDevice, type Device, type DeviceChoice } from '../runtime/execution-provider.js';
import type { GraphSession, Runtime, RuntimeName } from '../runtime/runtime.js';
import type { SessionSettings } from '../runtime/session-options.js';

/**
 * The graphs of a model opened on one runtime, each checked against the
 * manifest as it opens. Key/value projection graphs are only needed by
 * policies that propagate state, so they open on first use.
 */
export class ModelGraphs {
  private readonly kvProjections: (Promise<GraphSession> | undefined)[];

  private constructor(
    private readonly dir: string,
    private readonly manifest: ModelManifest,
    private readonly settings: SessionSettings,
    readonly runtime: Runtime,
    readonly choice: DeviceChoice,
    readonly embed: GraphSession,
    readonly layers: GraphSession[],
    readonly head: GraphSession,
  ) {
    this.kvProjections = manifest.graphs.kvProjections.map(() => undefined);
  }

  static async open(dir: string, manifest: ModelManifest, device: Device, threads: number | undefined, runtimeName: RuntimeName | null): Promise<ModelGraphs> {
    const { graphs } = manifest;
    for (const file of [graphs.embed, graphs.head, ...graphs.layers, ...graphs.kvProjections]) {
      const exists = await stat(join(dir, file)).then((s) => s.isFile(), () => false);
      if (!exists) throw new ModelGraphError(join(dir, file), 'is named by skipgen.json but does not exist');
    }
    const embedPath = join(dir, graphs.embed);
    const { value, choice } = await openOnDevice(
      device,
      async (d) => {
        const { runtime, fallback } = createRuntime(runtimeName, d, threads);
        try {
          const embed = await openSession(runtime, embedPath, { device: d, threads }, d === 'cuda');
          return { runtime, embed, fallback };
        } catch (error) {
          runtime.dispose();
          throw error;
        }
      },
      undefined,
      (d) => computeTypeProblem(manifest, d),
    );
    const { runtime, embed, fallback } = value;
    const runtimeChoice: DeviceChoice = {
      ...choice,
      runtime: runtime.name,
      threadPool: embed.threadPool,
      ...(fallback ? { reason: `${choice.reason}; the C API runtime cannot load (${fallback}), using onnxruntime-node's session.run` } : {}),
    };
    const settings: SessionSettings = { device: choice.device, threads };
    const opened: GraphSession[] = [embed];
    try {
      checkGraph(embed, 'embed', manifest);
      const head = await openSession(runtime, join(dir, graphs.head), settings);
      opened.push(head);
      checkGraph(head, 'head', manifest);
      const layers: GraphSession[] = [];
      for (const file of graphs.layers) {
        const session = await openSession(runtime, join(dir, file), settings);
        opened.push(session);
        checkGraph(session, 'layer', manifest);
        layers.push(session);
      }
      return new ModelGraphs(dir, manifest, settings, runtime, runtimeChoice, embed, layers, head);
    } catch (error) {
      await Promise.all(opened.map((s) => runtime.release(s)));
      runtime.dispose();
      throw error;
    }
  }

  /** The key/value projection of `layer`, opened (and checked) on first use. */
  kvProjection(layer: number): Promise<GraphSession> {
    let session = this.kvProjections[layer];
    if (!session) {
      const path = join(this.dir, this.manifest.graphs.kvProjections[layer]!);
      session = openSession(this.runtime, path, this.settings).then(async (opened) => {
        try {
          checkGraph(opened, 'kvProjection', this.manifest);
        } catch (error) {
          await this.runtime.release(opened);
          throw error;
        }
        return opened;
      });
      this.kvProjections[layer] = session;
    }
    return session;
  }

  async release(): Promise<void> {
    // A projection that failed its check was released when it failed.
    const opened = this.kvProjections.filter((p): p is Promise<GraphSession> => p !== undefined).map((p) => p.catch(() => undefined));
    const kv = (await Promise.all(opened)).filter((s): s is GraphSession => s !== undefined);
    await Promise.all([this.embed, this.head, ...this.layers, ...kv].map((s) => this.runtime.release(s)));
    this.runtime.dispose();
  }
}

/**
 * Why the model cannot run on a device, or null. ONNX Runtime's CUDA
 * GroupQueryAttention has float16/bfloat16 kernels only, so a float32 model
 * would run its attention on the CPU, copying the cache over PCIe every
 * layer. A float16 model runs on the CPU (ONNX Runtime casts around the few
 * ops without float16 CPU kernels), only slower than a float32 one.
 */
export function computeTypeProblem(manifest: ModelManifest, device: 'cpu' | 'cuda'): string | null {
  if (device === 'cuda' && manifest.computeType !== 'float16') {
    return "the model computes in float32, and ONNX Runtime's CUDA GroupQueryAttention has float16 kernels only; convert it with --compute float16 for CUDA";
  }
  return null;
}

async function openSession(runtime: Runtime, path: string, settings: SessionSettings, quiet = false): Promise<GraphSession> {
  try {
    return await runtime.open(path, settings, quiet);
  } catch (error) {
    if (settings.device === 'cuda') throw error;
    throw new ModelGraphError(path, `ONNX Runtime cannot load this graph (${String((error as Error).message).split('\n')[0]})`);
  }
}

/** Throws `ModelGraphError` unless the graph's declared inputs and outputs are what the manifest says a graph of `role` binds. */
function checkGraph(session: GraphSession, role: GraphRole, manifest: ModelManifest): void {
  const problem = graphIoProblem(role, manifest, session.inputs, session.outputs);
  if (problem) throw new ModelGraphError(session.path, problem);
}

