// Cost of candidate detector architectures before spending long runs on them: parameters and the
// training time of a fixed number of batches on generated 32x32 images (the cost of a step does not
// depend on the pixels), scaled to a 90,000-image epoch. Candidates are alternated (a, b, c, a, ...)
// across repeats because this machine's speed drifts; the table gives medians and the spread.
//
//   npx tsx bench/arch-cost.ts [--repeats 3] [--batches 60] [--threads 2] [--only name,name]
import os from 'node:os';
import { parseArgs } from 'node:util';

import { modelSpecOf, resolveConfig, type TrainConfigInput } from '../src/config';
import { CifakeModel } from '../src/model';

const CANDIDATES: Record<string, { preset?: string; config: TrainConfigInput }> = {
  'hoc-deep-plus': { preset: 'hoc-deep-plus', config: {} },
  'vgg2x-32-64-128': { config: { model: { family: 'lightweight', convFilters: [32, 64, 128], convsPerBlock: 2, dense: [128] } } },
  'hoc-vgg2x-32-64-128': { config: { model: { family: 'hoc', convFilters: [32, 64, 128], convsPerBlock: 2, dense: [128] } } },
  'hoc-res2x-32-64-128': { config: { model: { family: 'hoc', convFilters: [32, 64, 128], convsPerBlock: 2, residual: true, dense: [128] } } },
  'hoc-res2x-48-96-192': { config: { model: { family: 'hoc', convFilters: [48, 96, 192], convsPerBlock: 2, residual: true, dense: [128] } } },
  'hoc-res2x-32-64-128-256': { config: { model: { family: 'hoc', convFilters: [32, 64, 128, 256], convsPerBlock: 2, residual: true, dense: [128] } } },
  'hoc-res3x-32-64-128': { config: { model: { family: 'hoc', convFilters: [32, 64, 128], convsPerBlock: 3, residual: true, dense: [128] } } },
};

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function timeOne(input: TrainConfigInput, preset: string | undefined, threads: number, batches: number, batch: number) {
  const config = resolveConfig({ preset: preset ?? null, overrides: { ...input, device: 'cpu' } });
  const model = CifakeModel.create(modelSpecOf(config.model), { device: 'cpu', seed: 1, threads, optimizer: config.optimizer, channelsLast: config.channelsLast });
  try {
    const n = batches * batch;
    const images = new Uint8Array(n * 3 * 32 * 32);
    for (let i = 0; i < images.length; i++) images[i] = (i * 2654435761) >>> 24;
    const labels = new Uint8Array(n).map((_, i) => i & 1);
    await model.setData('train', images, labels);
    const aug = { hflip: true, shift: 4 };
    await model.trainEpoch({ data: 'train', batchSize: batch, seed: 1, epoch: 99, augment: aug }); // warm-up
    const r = await model.trainEpoch({ data: 'train', batchSize: batch, seed: 1, epoch: 0, augment: aug });
    return { params: model.parameters, epochSeconds: (r.seconds / r.images) * 90_000 };
  } finally {
    model.dispose();
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      repeats: { type: 'string', default: '3' },
      batches: { type: 'string', default: '60' },
      batch: { type: 'string', default: '32' },
      threads: { type: 'string', default: String(Math.min(2, os.availableParallelism())) },
      only: { type: 'string' },
    },
  });
  const names = values.only ? values.only.split(',') : Object.keys(CANDIDATES);
  for (const n of names) if (!CANDIDATES[n]) throw new Error(`--only: unknown candidate '${n}' (known: ${Object.keys(CANDIDATES).join(', ')})`);
  const threads = Number(values.threads), batches = Number(values.batches), batch = Number(values.batch);
  const seconds: Record<string, number[]> = {};
  const params: Record<string, number> = {};
  for (let r = 0; r < Number(values.repeats); r++) {
    for (const n of names) {
      const c = CANDIDATES[n];
      const m = await timeOne(c.config, c.preset, threads, batches, batch);
      (seconds[n] ??= []).push(m.epochSeconds);
      params[n] = m.params;
      console.error(`repeat ${r + 1} ${n}: ${m.epochSeconds.toFixed(1)} s/epoch (load ${os.loadavg()[0].toFixed(1)})`);
    }
  }
  console.log(`# architecture cost: ${threads} thread(s), batch ${batch}, ${batches} batches timed, scaled to 90k images; ${os.cpus()[0]?.model ?? ''}`);
  console.log('| candidate | params | s per 90k epoch (median) | min-max |');
  console.log('|---|---|---|---|');
  for (const n of names) {
    const s = seconds[n];
    console.log(`| ${n} | ${params[n].toLocaleString('en-US')} | ${median(s).toFixed(1)} | ${Math.min(...s).toFixed(1)}-${Math.max(...s).toFixed(1)} |`);
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
