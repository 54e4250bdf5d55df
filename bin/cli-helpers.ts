// What every cifake command shares: argument parsers (each names its flag), output, usage errors
// and the Ctrl-C handler. Exit codes: 0 ok, 1 failure, 2 usage or invalid configuration.
import os from 'node:os';

import { InvalidArgumentError } from 'commander';

import type { metrics } from '../src';

type MetricsReport = metrics.MetricsReport;

/** A usage mistake found after parsing (exit 2, printed as an invalid configuration). */
export class UsageError extends Error {}

function parser(name: string, ok: (n: number) => boolean, what: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !ok(n)) throw new InvalidArgumentError(`${name} must be ${what}, got '${v}'`);
    return n;
  };
}

export const int = (name: string) => parser(name, Number.isInteger, 'an integer');
export const num = (name: string) => parser(name, Number.isFinite, 'a number');
export const positiveInt = (name: string) => parser(name, (n) => Number.isInteger(n) && n >= 1, 'an integer >= 1');
export const nonNegativeInt = (name: string) => parser(name, (n) => Number.isInteger(n) && n >= 0, 'an integer >= 0');
export const unit = (name: string) => parser(name, (n) => n >= 0 && n <= 1, 'a number in [0, 1]');
export const positive = (name: string) => parser(name, (n) => Number.isFinite(n) && n > 0, 'a number > 0');
export const intIn = (name: string, min: number, max: number) => parser(name, (n) => Number.isInteger(n) && n >= min && n <= max, `an integer in ${min}..${max}`);

/** `--threads N`: 1..the CPUs available to this process (more would oversubscribe the cores). */
export function threadsArg(v: string): number {
  const cpus = Math.max(1, os.availableParallelism());
  return parser('--threads', (n) => Number.isInteger(n) && n >= 1 && n <= cpus, `an integer from 1 to ${cpus} (the CPUs available)`)(v);
}

export function parseClassMap(v: string): Record<string, 0 | 1> {
  let m: unknown;
  try {
    m = JSON.parse(v);
  } catch {
    throw new InvalidArgumentError(`--class-map must be JSON like '{"ai":0,"photo":1}', got '${v}'`);
  }
  if (typeof m !== 'object' || m === null || Object.values(m).some((x) => x !== 0 && x !== 1))
    throw new InvalidArgumentError('--class-map: each folder must map to 0 (FAKE) or 1 (REAL)');
  return m as Record<string, 0 | 1>;
}

/** One result on stdout: JSON (one line) or text. */
export function print(json: boolean, value: unknown, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${text}\n`);
}

export function metricsTable(label: string, m: MetricsReport): string {
  const f = (x: number | null) => (x === null ? '-' : x.toFixed(4));
  return [
    `${label}: n=${m.n} accuracy ${(m.accuracy * 100).toFixed(2)}%  AUC ${f(m.rocAuc)}  log loss ${f(m.logLoss)}`,
    `  REAL: precision ${f(m.precision.REAL)} recall ${f(m.recall.REAL)} F1 ${f(m.f1.REAL)}`,
    `  FAKE: precision ${f(m.precision.FAKE)} recall ${f(m.recall.FAKE)} F1 ${f(m.f1.FAKE)}`,
    `  confusion (rows true FAKE/REAL, cols predicted): [[${m.confusion.tn}, ${m.confusion.fp}], [${m.confusion.fn}, ${m.confusion.tp}]]`,
  ].join('\n');
}

/**
 * Ctrl-C once: `say(message)` and abort the returned signal (the work stops after its current
 * batch); twice: exit 130 at once. Call `off()` when the work is done.
 */
export function onInterrupt(say: (m: string) => void, message: string): { signal: AbortSignal; off: () => void } {
  const ac = new AbortController();
  let interrupts = 0;
  const handler = () => {
    if (++interrupts > 1) process.exit(130);
    say(`interrupt: ${message} (Ctrl-C again to quit at once)`);
    ac.abort();
  };
  process.on('SIGINT', handler);
  return { signal: ac.signal, off: () => process.off('SIGINT', handler) };
}
