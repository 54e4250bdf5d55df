// Child process of test/data-fuzz.test.ts: loads every input of a manifest through the public
// data API and prints one JSON line per input. A crash, an uncaught error or a hang here is what
// the parent test detects (exit status, signal); "start" lines name the input being loaded.
import * as fs from 'node:fs';
import { DataError, decodeImages, loadSplit } from '../src/data';

interface Manifest {
  images: string[];
  datasets: string[];
}

function out(line: Record<string, unknown>): void {
  fs.writeSync(1, `${JSON.stringify(line)}\n`);
}

function describeError(e: unknown): { name: string; message: string; dataError: boolean; file?: string } {
  const err = e as Error & { file?: string };
  return { name: err?.name ?? typeof e, message: String(err?.message ?? e), dataError: e instanceof DataError, file: err?.file };
}

async function main(): Promise<void> {
  const m = JSON.parse(fs.readFileSync(process.argv[2], 'utf8')) as Manifest;
  for (const [i, file] of m.images.entries()) {
    out({ start: 'image', i });
    try {
      const d = await decodeImages([file], { resize: true });
      out({ kind: 'image', i, count: d.count, errors: d.errors });
    } catch (e) {
      out({ kind: 'image', i, threw: describeError(e) });
    }
  }
  for (const [i, data] of m.datasets.entries()) {
    out({ start: 'dataset', i });
    try {
      const s = await loadSplit(data, { split: 'train', cacheDir: false, resize: true });
      out({ kind: 'dataset', i, count: s.count, listed: s.summary.listed, skipped: s.summary.skipped });
    } catch (e) {
      out({ kind: 'dataset', i, threw: describeError(e) });
    }
  }
  out({ done: true });
}

process.on('unhandledRejection', (e) => {
  out({ unhandledRejection: describeError(e) });
  process.exit(3);
});
main().catch((e) => {
  out({ fatal: describeError(e) });
  process.exit(4);
});
