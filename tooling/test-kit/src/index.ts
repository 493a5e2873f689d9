/**
 * Helpers shared by skipgen's tests. Not published and not a dependency of any
 * package (that would make a build cycle): tests import `@skipgen/test-kit`
 * from source through the vitest alias and the tsconfig paths.
 */
export { convertPreset, type ConvertedPreset, type ConvertPresetOptions, type TestModelName } from './converted-preset.js';
export { openTinyModel, useTinyModel, type TinyModel, type TinyModelOptions } from './tiny-model.js';
export { keepLayers } from './keep-layers.js';
export { soloRun } from './solo-run.js';
export { openAll } from './open-all.js';
export { maxAbsDiff, maxLogitsDiff } from './max-abs-diff.js';
export { TempDirs } from './temp-dirs.js';
export { loadConverted } from './load-converted.js';
export { bytesOf, snapshot } from './directory-contents.js';
export { promptIds } from './prompt-ids.js';
export { expectFailure } from './expect-failure.js';
export { kvAt, zeroSlot, type PositionKv } from './cache-slot.js';
export { expectSameAsSolo } from './same-as-solo.js';
export { errorOf, expectSkipPolicyError } from './policy-errors.js';
export { spacingTokenizer, writeSpacingTokenizer } from './spacing-tokenizer.js';
export { CHATML_TOKENIZER_SPEC, CHATML_TOKENS, QWEN25_CHAT_TEMPLATE, SMOLLM2_CHAT_TEMPLATE, writeChatTokenizer } from './chat-templates.js';
export { writeReshapeGraph, type DeclaredValue } from './reshape-graph.js';
export { skipOneLayer } from './skip-one-layer.js';
