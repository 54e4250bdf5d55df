// Data pipeline benchmark: first ingest of a CIFAKE zip (all splits, into a fresh cache) and a
// cached load of the train split.
//
//   npx tsx bench/ingest.ts [zip] [--keep] [--addon PATH] [--cold-load]
//
// 1. prepare(): decodes every split of the zip into a new cache (streaming, bounded memory);
// 2. in a fresh process, loadSplit('train') from that cache;
// 3. with --cold-load, in a fresh process, loadSplit('train') into an empty cache (decode + keep
//    the images in memory + write the cache), as a first training run does.
//
// zip defaults to $CIFAKE_DATA, else $CIFAKE_ZIP, else ../shared/data/cifake-dev.zip from the
// repository root. The cache goes to a new temporary folder, removed afterwards unless --keep
// (~340 MB for CIFAKE). --addon loads decodeJpegBatch from another .node file (e.g. a standalone
// build of native/jpeg*.cc).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatSummary, jpegBinding, JpegBinding, loadSplit, prepare, progressBar, setJpegBinding } from '../src/data';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Child mode (`--load DIR`): loadSplit('train') with the cache in DIR; prints the seconds. */
async function childLoad(zip: string, cacheDir: string): Promise<void> {
  const t1 = process.hrtime.bigint();
  const train = await loadSplit(zip, { split: 'train', cacheDir });
  const s = Number(process.hrtime.bigint() - t1) / 1e9;
  const what = train.summary.cache.hit ? 'cached load' : 'cold load (decode + cache write)';
  console.log(`${what} of train, fresh process: ${train.count} images (${(train.images.length / 1e6).toFixed(0)} MB) in ${s.toFixed(2)} s = ${Math.round(train.count / s)} img/s`);
  console.log(`  peak RSS of that process: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
}

function child(zip: string, cacheDir: string, addon: string | undefined): void {
  const args = [...process.execArgv, __filename, zip, '--load', cacheDir, ...(addon !== undefined ? ['--addon', addon] : [])];
  const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`child process failed (${r.status ?? r.signal})`);
}

async function main(): Promise<void> {
  const positional = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !(i > 0 && ['--addon', '--load'].includes(all[i - 1])));
  const zip = path.resolve(positional[0] ?? process.env.CIFAKE_DATA ?? process.env.CIFAKE_ZIP ?? path.resolve(__dirname, '..', '..', 'shared', 'data', 'cifake-dev.zip'));
  if (!fs.existsSync(zip)) {
    console.error(`bench/ingest: ${zip} not found (pass a zip or set CIFAKE_DATA)`);
    process.exit(2);
  }
  const addon = arg('--addon');
  if (addon !== undefined) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    setJpegBinding(require(path.resolve(addon)) as JpegBinding);
  }
  const loadDir = arg('--load');
  if (loadDir !== undefined) return childLoad(zip, loadDir);
  const decoder = jpegBinding() !== null ? 'native libjpeg-turbo (addon) + sharp fallback' : 'sharp only (no native decodeJpegBatch)';
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-bench-cache-'));
  const keep = process.argv.includes('--keep');
  console.log(`zip: ${zip} (${(fs.statSync(zip).size / 1e6).toFixed(1)} MB)`);
  console.log(`decoder: ${decoder}; CPUs: ${os.availableParallelism()}; UV_THREADPOOL_SIZE: ${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}`);
  console.log(`cache: ${cacheDir}${keep ? '' : ' (temporary)'}`);
  try {
    // 1. First ingest: every split, decoded and written to the (empty) cache.
    const bar = progressBar('ingest');
    const t0 = process.hrtime.bigint();
    let summaries;
    try {
      summaries = await prepare(zip, { cacheDir, onProgress: bar });
    } finally {
      bar.stop();
    }
    const ingestS = Number(process.hrtime.bigint() - t0) / 1e9;
    const images = summaries.reduce((s, x) => s + x.count, 0);
    for (const s of summaries) console.log(formatSummary(s));
    console.log(`first ingest: ${images} images in ${ingestS.toFixed(2)} s = ${Math.round(images / ingestS)} img/s`);

    console.log(`peak RSS: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);

    // 2. Cached load of train, in a fresh process as a training run would do it.
    child(zip, cacheDir, addon);
    // 3. Cold loadSplit of train into an empty cache.
    if (process.argv.includes('--cold-load')) {
      const cold = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-bench-cold-'));
      try {
        child(zip, cold, addon);
      } finally {
        fs.rmSync(cold, { recursive: true, force: true });
      }
    }
  } finally {
    if (!keep) fs.rmSync(cacheDir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
