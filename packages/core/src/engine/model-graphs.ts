import { stat } from 'node:fs/promises';
import { join } from 'node:path';

import * as ort from 'onnxruntime-node';

import { ModelGraphError } from '../errors.js';
import { graphIoProblem, type DeclaredGraphValue, type GraphRole } from '../format/graph-shapes.js';
import type { ModelManifest } from '../format/manifest.js';
import { openOnDevice, type Device, type DeviceChoice } from '../runtime/execution-provider.js';
import { sessionOptions, type SessionSettings } from '../runtime/session-options.js';
import { keepOnnxRuntimeTelemetryOff } from '../runtime/telemetry.js';

/**
 * The ONNX Runtime sessions of a model, each checked against the manifest as
 * it opens. Key/value projection graphs are only needed by policies that
 * propagate state, so they open on first use.
 */
export class ModelGraphs {
  private readonly kvProjections: (Promise<ort.InferenceSession> | undefined)[];
  private readonly paths = new Map<ort.InferenceSession, string>();

  private constructor(
    private readonly dir: string,
    private readonly manifest: ModelManifest,
    private readonly settings: SessionSettings,
    readonly choice: DeviceChoice,
    readonly embed: ort.InferenceSession,
    readonly layers: ort.InferenceSession[],
    readonly head: ort.InferenceSession,
  ) {
    this.kvProjections = manifest.graphs.kvProjections.map(() => undefined);
    const { graphs } = manifest;
    this.paths.set(embed, join(dir, graphs.embed)).set(head, join(dir, graphs.head));
    layers.forEach((session, layer) => this.paths.set(session, join(dir, graphs.layers[layer]!)));
  }

  static async open(dir: string, manifest: ModelManifest, device: Device, threads?: number): Promise<ModelGraphs> {
    const { graphs } = manifest;
    for (const file of [graphs.embed, graphs.head, ...graphs.layers, ...graphs.kvProjections]) {
      const exists = await stat(join(dir, file)).then((s) => s.isFile(), () => false);
      if (!exists) throw new ModelGraphError(join(dir, file), 'is named by skipgen.json but does not exist');
    }
    const { value: embed, choice } = await openOnDevice(device, (d) => openSession(join(dir, graphs.embed), { device: d, threads }, d === 'cuda'));
    const settings: SessionSettings = { device: choice.device, threads };
    const opened: ort.InferenceSession[] = [embed];
    try {
      checkGraph(embed, 'embed', join(dir, graphs.embed), manifest);
      const head = await openSession(join(dir, graphs.head), settings);
      opened.push(head);
      checkGraph(head, 'head', join(dir, graphs.head), manifest);
      const layers: ort.InferenceSession[] = [];
      for (const file of graphs.layers) {
        const session = await openSession(join(dir, file), settings);
        opened.push(session);
        checkGraph(session, 'layer', join(dir, file), manifest);
        layers.push(session);
      }
      return new ModelGraphs(dir, manifest, settings, choice, embed, layers, head);
    } catch (error) {
      await Promise.all(opened.map((s) => s.release()));
      throw error;
    }
  }

  /** The key/value projection of `layer`, opened (and checked) on first use. */
  kvProjection(layer: number): Promise<ort.InferenceSession> {
    let session = this.kvProjections[layer];
    if (!session) {
      const path = join(this.dir, this.manifest.graphs.kvProjections[layer]!);
      session = openSession(path, this.settings).then(async (opened) => {
        try {
          checkGraph(opened, 'kvProjection', path, this.manifest);
        } catch (error) {
          await opened.release();
          throw error;
        }
        this.paths.set(opened, path);
        return opened;
      });
      this.kvProjections[layer] = session;
    }
    return session;
  }

  /** The file a session was opened from, for errors that name it. */
  pathOf(session: ort.InferenceSession): string {
    return this.paths.get(session)!;
  }

  async release(): Promise<void> {
    // A projection that failed its check was released when it failed.
    const opened = this.kvProjections.filter((p): p is Promise<ort.InferenceSession> => p !== undefined).map((p) => p.catch(() => undefined));
    const kv = (await Promise.all(opened)).filter((s): s is ort.InferenceSession => s !== undefined);
    await Promise.all([this.embed, this.head, ...this.layers, ...kv].map((s) => s.release()));
  }
}

async function openSession(path: string, settings: SessionSettings, quiet = false): Promise<ort.InferenceSession> {
  keepOnnxRuntimeTelemetryOff();
  try {
    return await ort.InferenceSession.create(path, sessionOptions(settings, quiet));
  } catch (error) {
    if (settings.device === 'cuda') throw error;
    throw new ModelGraphError(path, `ONNX Runtime cannot load this graph (${String((error as Error).message).split('\n')[0]})`);
  }
}

/** Throws `ModelGraphError` unless the graph's declared inputs and outputs are what the manifest says a graph of `role` binds. */
function checkGraph(session: ort.InferenceSession, role: GraphRole, path: string, manifest: ModelManifest): void {
  const declared = (values: readonly ort.InferenceSession.ValueMetadata[]): DeclaredGraphValue[] =>
    values.map((v) => (v.isTensor ? { name: v.name, isTensor: true, type: v.type, shape: v.shape } : { name: v.name, isTensor: false }));
  const problem = graphIoProblem(role, manifest, declared(session.inputMetadata), declared(session.outputMetadata));
  if (problem) throw new ModelGraphError(path, problem);
}
