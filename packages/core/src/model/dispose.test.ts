import { describe, expect, it } from 'vitest';

import { openTinyModel } from '@skipgen/test-kit';

import { fullDepth, InvalidRequestError, ModelDisposedError } from '../index.js';

describe('Model.dispose', () => {
  it('refuses work at once after dispose, with ModelDisposedError', async () => {
    const tiny = await openTinyModel({ preset: 'llama-tied', maxSequences: 1, slotTokens: 64 });
    const { model } = tiny;
    await tiny.dispose();
    expect(() => model.stream([1, 2], { maxNewTokens: 3 })).toThrow(ModelDisposedError);
    await expect(model.generate([1, 2], { maxNewTokens: 3 })).rejects.toThrow(ModelDisposedError);
    await expect(model.generate([1, 2], { maxNewTokens: 3 })).rejects.toThrow('model: was disposed; load it again with loadModel() to generate');
    await expect(model.logits([1, 2])).rejects.toThrow(ModelDisposedError);
    await expect(model.score([1, 2], [3])).rejects.toThrow(ModelDisposedError);
    expect(() => model.createTask([1, 2])).toThrow(ModelDisposedError);
    // Still an InvalidRequestError, which callers already catch for refused requests.
    expect(() => model.stream([1, 2])).toThrow(InvalidRequestError);
  });

  it('waits for running requests, and refuses any submitted while it waits', async () => {
    const tiny = await openTinyModel({ preset: 'llama-tied', maxSequences: 2, slotTokens: 64 });
    const { model } = tiny;
    const running = model.stream([1, 5, 9], { maxNewTokens: 24, eosTokenIds: [] });
    const scoring = model.score([1, 5], [9, 13, 17, 21]);
    const tokens: number[] = [];
    let disposing: Promise<void> | undefined;
    for await (const token of running) {
      tokens.push(token.id);
      if (token.index === 2) {
        disposing = tiny.dispose();
        expect(() => model.stream([1, 2], { maxNewTokens: 3 })).toThrow(ModelDisposedError);
        await expect(model.logits([1, 2])).rejects.toThrow(ModelDisposedError);
      }
    }
    expect((await running.result).ids).toEqual(tokens);
    expect(tokens).toHaveLength(24);
    expect((await scoring).logProbs).toHaveLength(4);
    await disposing;
    await expect(model.generate([1, 2])).rejects.toThrow(ModelDisposedError);
  });

  it('a caller driving the engine itself gets ModelDisposedError after dispose, not an ONNX Runtime error', async () => {
    const tiny = await openTinyModel({ preset: 'llama-tied', maxSequences: 1, slotTokens: 64 });
    const { model } = tiny;
    const sequence = model.engine.open(8, model.bindPolicy(fullDepth()));
    await model.engine.prefill(sequence, [1, 5]);
    await tiny.dispose();
    await expect(model.engine.decode([{ sequence, token: 9 }])).rejects.toThrow(ModelDisposedError);
    await expect(model.engine.prefill(sequence, [3])).rejects.toThrow(ModelDisposedError);
  });
});
