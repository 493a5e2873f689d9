#!/usr/bin/env node
import { Command } from 'commander';

import { SkipgenError } from '@skipgen/core';

import { convertCommand } from './commands/convert.js';
import { demoCommand } from './commands/demo.js';
import { evalCommand } from './commands/eval.js';
import { benchCommand } from './commands/bench.js';
import { generateCommand } from './commands/generate.js';
import { planCommand } from './commands/plan.js';

const program = new Command('skipgen')
  .description('Run decoder-only LLMs on ONNX Runtime and decode faster by skipping layers')
  .showHelpAfterError()
  .addCommand(convertCommand())
  .addCommand(generateCommand())
  .addCommand(planCommand())
  .addCommand(benchCommand())
  .addCommand(evalCommand())
  .addCommand(demoCommand());

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof SkipgenError) {
    console.error(`${error.name}: ${error.message}`);
    process.exitCode = 1;
  } else {
    throw error;
  }
}
