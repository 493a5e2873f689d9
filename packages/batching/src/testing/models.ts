import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { convertCheckpoint } from '@skipgen/convert';
import { presets, stories260kDir, writeCheckpoint, type PresetName } from '@skipgen/test-models';

/** Converts a preset (or stories260K) into a temp model directory. */
export async function convertedModel(name: PresetName | 'stories260k'): Promise<{ dir: string; remove: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), `skipgen-batching-${name}-`));
  let source = stories260kDir();
  if (name !== 'stories260k') {
    source = join(root, 'hf');
    await writeCheckpoint(source, presets[name]);
  }
  await convertCheckpoint(source, join(root, 'model'));
  return { dir: join(root, 'model'), remove: () => rm(root, { recursive: true, force: true }) };
}
