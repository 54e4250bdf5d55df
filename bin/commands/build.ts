// cifake build: (re)build the native addon against the libtorch found.
import { spawnSync } from 'node:child_process';
import path from 'node:path';

import { Command } from 'commander';

import { PACKAGE_ROOT } from '../../src';

export function buildCommand(): Command {
  return new Command('build')
    .description('(re)build the native addon against the libtorch found (LIBTORCH, Torch_DIR, python3 torch, system)')
    .action(() => {
      const r = spawnSync(process.execPath, [path.join(PACKAGE_ROOT, 'scripts', 'build-native.js'), '--force'], { stdio: 'inherit' });
      process.exitCode = r.status ?? 1;
    });
}
