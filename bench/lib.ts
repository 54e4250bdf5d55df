// What the benchmarks share: order statistics, the report files they write and the way they run.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { loadedBlasLibraries } from '../src/native';

/** Median (the mean of the two middle values for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The q-quantile by the nearest-rank rule (q in [0, 1]). */
export function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

/** Writes <outDir>/<name>-<timestamp>.md and .json; returns their common path without extension. */
export function writeBenchReport(outDir: string, name: string, markdown: string, json: unknown): string {
  fs.mkdirSync(outDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const base = path.join(outDir, `${name}-${stamp}`);
  fs.writeFileSync(`${base}.md`, markdown + '\n');
  fs.writeFileSync(`${base}.json`, JSON.stringify(json, null, 2) + '\n');
  console.error(`wrote ${base}.md and ${base}.json`);
  return base;
}

/** Runs a benchmark's main(); a failure prints its stack and exits 1. */
export function runBench(main: () => Promise<void> | void): void {
  Promise.resolve()
    .then(main)
    .catch((e: Error) => {
      console.error(e.stack ?? e.message);
      process.exit(1);
    });
}

/** A goal line: `what: value (goal <op> target): met | NOT met`. */
export function goalLine(what: string, value: number, unit: string, op: '<=' | '>=', target: number): string {
  const met = op === '<=' ? value <= target : value >= target;
  return `${what}: ${value.toFixed(1)} ${unit} (goal ${op} ${target} ${unit}): ${met ? 'met' : 'NOT met'}`;
}

/** The threading environment and machine load a measurement ran under (for report headers). */
export function environmentLine(): string {
  const env = process.env;
  const omp = `OMP_NUM_THREADS=${env.OMP_NUM_THREADS}${env.OMP_WAIT_POLICY ? `, OMP_WAIT_POLICY=${env.OMP_WAIT_POLICY}` : ''}${env.OPENBLAS_NUM_THREADS ? `, OPENBLAS_NUM_THREADS=${env.OPENBLAS_NUM_THREADS}` : ''}`;
  const blas = loadedBlasLibraries().map((l) => l.split('/').slice(-2).join('/')).join(', ') || '?';
  return `${omp}; BLAS ${blas}; node ${process.version}; load average at start ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`;
}
