#!/usr/bin/env node
import { Command } from 'commander';

import { KvCacheCapacityError, SkipgenError } from '@skipgen/core';

import { convertCommand } from './commands/convert.js';
import { cudaSetupCommand } from './commands/cuda-setup.js';
import { demoCommand } from './commands/demo.js';
import { evalCommand } from './commands/eval.js';
import { benchCommand } from './commands/bench.js';
import { generateCommand } from './commands/generate.js';
import { gpuCheckCommand } from './commands/gpu-check.js';
import { planCommand } from './commands/plan.js';
import { serveCommand } from './commands/serve.js';

const program = new Command('skipgen')
  .description('Run decoder-only LLMs on ONNX Runtime and decode faster by skipping layers')
  .showHelpAfterError()
  .addCommand(convertCommand())
  .addCommand(generateCommand())
  .addCommand(planCommand())
  .addCommand(benchCommand())
  .addCommand(evalCommand())
  .addCommand(demoCommand())
  .addCommand(serveCommand())
  .addCommand(cudaSetupCommand())
  .addCommand(gpuCheckCommand());

/**
 * The one line a user error is reported with, or null for a bug, whose stack
 * trace is kept for the report.
 */
function userError(error: unknown): string | null {
  // Core's advice names the API's cache options; a CLI user can only change the request.
  if (error instanceof KvCacheCapacityError) {
    return (
      `${error.name}: the prompt and the new tokens (${error.requiredTokens} tokens) do not fit the ${error.slotTokens} tokens ` +
      `a sequence may hold here; shorten the prompt or ask for fewer new tokens`
    );
  }
  if (error instanceof SkipgenError) return `${error.name}: ${error.message}`;
  // A file the command was pointed at is missing or unreadable: Node's message names it.
  if (error instanceof Error && typeof (error as NodeJS.ErrnoException).syscall === 'string') return `error: ${error.message}`;
  return null;
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  const line = userError(error);
  if (line === null) throw error;
  console.error(line);
  process.exitCode = 1;
}
