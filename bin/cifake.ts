#!/usr/bin/env node
// cifake: a thin commander layer over the library (one file per command in commands/, shared
// parsers and output in cli-helpers.ts). Exit codes: 0 ok, 1 failure, 2 usage or invalid configuration.
import { Command, CommanderError } from 'commander';

import { ConfigError, packageVersion } from '../src';
import { UsageError } from './cli-helpers';
import { buildCommand } from './commands/build';
import { dataCommand } from './commands/data';
import { evalCommand } from './commands/eval';
import { gradcamCommand } from './commands/gradcam';
import { infoCommand } from './commands/info';
import { predictCommand } from './commands/predict';
import { reportCommand } from './commands/report';
import { sweepCommand } from './commands/sweep';
import { trainCommand } from './commands/train';
import { robustnessCommand } from './commands/robustness';
import { calibrateCommand } from './commands/calibrate';
import { serveCommand } from './commands/serve';
import { exportCommand } from './commands/export';
import { importCommand } from './commands/import';
import { ensembleCommand } from './commands/ensemble';

const program = new Command();
program
  .name('cifake')
  .description('Train, evaluate, explain and serve detectors of AI-generated images (CIFAKE) on libtorch')
  .version(packageVersion())
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

// addCommand does not pass exitOverride down: set it so usage errors exit with 2 everywhere.
for (const cmd of [infoCommand(), buildCommand(), trainCommand(), evalCommand(), predictCommand(), dataCommand(), sweepCommand(), reportCommand(), gradcamCommand(), robustnessCommand(), calibrateCommand(), ensembleCommand(), serveCommand(), exportCommand(), importCommand()])
  program.addCommand(cmd.exitOverride().showHelpAfterError('(run with --help for usage)'));

export async function main(argv: string[]): Promise<number> {
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return 2;
    }
    if (e instanceof ConfigError || e instanceof UsageError) {
      process.stderr.write(`cifake: invalid configuration:\n${e.message}\n`);
      return 2;
    }
    process.stderr.write(`cifake: ${(e as Error).message}\n`);
    if (process.env.CIFAKE_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
    return 1;
  }
}

if (require.main === module) {
  // A reader that stops early (`cifake train --help | head`) closes our stdout: end quietly, as
  // Unix tools do on SIGPIPE, instead of dying on an unhandled EPIPE with a stack trace.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(0);
  });
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
