import { stat } from 'node:fs/promises';
import { join } from 'node:path';

import * as ort from 'onnxruntime-node';

import { ModelGraphError } from '../errors.js';
import type { ModelManifest } from '../format/manifest.js';
import { openOnDevice, type Device, type DeviceChoice } from '../runtime/execution-provider.js';
import { sessionOptions, type SessionSettings } from '../runtime/session-options.js';

/**
 * The ONNX Runtime sessions of a model. Key/value projection graphs are only
 * needed by policies that propagate state, so they open on first use.
 */
export class ModelGraphs {
  private readonly kvProjections: (Promise<ort.InferenceSession> | undefined)[];

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
      const head = await openSession(join(dir, graphs.head), settings);
      opened.push(head);
      const layers: ort.InferenceSession[] = [];
      for (const file of graphs.layers) {
        const session = await openSession(join(dir, file), settings);
        opened.push(session);
        layers.push(session);
      }
      return new ModelGraphs(dir, manifest, settings, choice, embed, layers, head);
    } catch (error) {
      await Promise.all(opened.map((s) => s.release()));
      throw error;
    }
  }

  /** The key/value projection of `layer`, opened on first use. */
  kvProjection(layer: number): Promise<ort.InferenceSession> {
    let session = this.kvProjections[layer];
    if (!session) {
      session = openSession(join(this.dir, this.manifest.graphs.kvProjections[layer]!), this.settings);
      this.kvProjections[layer] = session;
    }
    return session;
  }

  async release(): Promise<void> {
    const kv = await Promise.all(this.kvProjections.filter((p): p is Promise<ort.InferenceSession> => p !== undefined));
    await Promise.all([this.embed, this.head, ...this.layers, ...kv].map((s) => s.release()));
  }
}

async function openSession(path: string, settings: SessionSettings, quiet = false): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(path, sessionOptions(settings, quiet));
  } catch (error) {
    if (settings.device === 'cuda') throw error;
    throw new ModelGraphError(path, `ONNX Runtime cannot load this graph (${String((error as Error).message).split('\n')[0]})`);
  }
}
