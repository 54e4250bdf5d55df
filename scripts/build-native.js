#!/usr/bin/env node
// Builds the libtorch addon with cmake-js. Run by `npm install`; `--force` rebuilds.
// Set CIFAKE_SKIP_BUILD=1 to skip (e.g. when packaging TypeScript only).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const addon = path.join(root, 'build', 'Release', 'cifake_native.node');
const force = process.argv.includes('--force');

if (process.env.CIFAKE_SKIP_BUILD === '1') {
  console.log('cifake-torch: CIFAKE_SKIP_BUILD=1, not building the native addon');
  process.exit(0);
}
if (!force && fs.existsSync(addon) && process.env.npm_command !== 'rebuild') {
  console.log(`cifake-torch: native addon already built (${path.relative(root, addon)}); npm run build:native rebuilds it`);
  process.exit(0);
}

const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const jobs = String(Math.max(1, require('node:os').availableParallelism()));
const args = [cmakeJs, 'compile', '--directory', root, '--config', 'Release', '--parallel', jobs];
const r = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root });
if (r.status !== 0) {
  console.error(`
cifake-torch: building the native addon failed.
It needs a C++17 compiler, CMake >= 3.18 and libtorch (1.13 or 2.x). Provide libtorch by one of:
  - LIBTORCH=/path/to/libtorch            (an unpacked libtorch zip)
  - Torch_DIR=/path/to/share/cmake/Torch  (any TorchConfig.cmake)
  - a Python torch install: python3 -c "import torch" must work
  - Debian/Ubuntu: sudo apt-get install libtorch-dev libopenblas0-openmp
Then run: npm rebuild cifake-torch   (or, in a checkout: npm run build:native)`);
  process.exit(r.status || 1);
}
