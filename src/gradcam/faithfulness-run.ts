/**
 * Which explanation to trust: every CAM method on the same images and layer, scored with ROAD and
 * deletion / insertion (src/gradcam/faithfulness.ts), next to a random and a centre-prior map, plus
 * where each method puts its mass (the share in the central 16 x 16, 0.25 for a uniform map).
 */
import type { CifakeModel } from '../model';
import { camFromLayer, GRADIENT_CAM_METHODS, layerTensorsOf, scoreCam, upsampleMaps, type GradientCamMethod } from './cam-methods';
import { centrePriorMaps, faithfulness, randomMaps, type FaithfulnessScores } from './faithfulness';

export const CAM_METHODS = [...GRADIENT_CAM_METHODS, 'scorecam'] as const;
export type CamMethod = (typeof CAM_METHODS)[number];
export const BASELINES = ['random', 'centre'] as const;

export interface MethodRow extends FaithfulnessScores {
  method: CamMethod | (typeof BASELINES)[number];
  /** mean share of the map's mass in the central 16 x 16 pixels (uniform: 0.25) */
  centreShare: number;
}

export interface FaithfulnessReport {
  layer: string;
  n: number;
  /** 'pred': each image's predicted class is explained */
  target: 'pred';
  rows: MethodRow[];
}

/** Mean share of each 32 x 32 map's mass inside the central 16 x 16. */
export function centreShare(maps: Float32Array): number {
  const n = maps.length / 1024;
  let total = 0;
  for (let i = 0; i < n; i++) {
    let all = 0, centre = 0;
    for (let y = 0; y < 32; y++)
      for (let x = 0; x < 32; x++) {
        const v = maps[i * 1024 + y * 32 + x];
        all += v;
        if (y >= 8 && y < 24 && x >= 8 && x < 24) centre += v;
      }
    total += all > 0 ? centre / all : 0.25;
  }
  return n ? total / n : NaN;
}

/** 32 x 32 maps (peak 1) of `method` for the images' predicted classes, from one batched native pass. */
export async function camMaps(model: CifakeModel, images: Uint8Array, method: CamMethod, layer?: string): Promise<{ maps: Float32Array; targets: Int32Array; layer: string }> {
  const g = await model.gradcam(images, { layer, target: 'pred', tensors: true });
  const t = layerTensorsOf(g);
  const raw = method === 'scorecam' ? await scoreCam(model, images, t, g.targets) : camFromLayer(t, method as GradientCamMethod);
  return { maps: upsampleMaps(raw, g.n, g.layerSize), targets: g.targets, layer: g.layer };
}

/** Every method (and the baselines) on the same images: faithfulness and centre share per row. */
export async function compareMethods(
  model: CifakeModel,
  images: Uint8Array,
  opts: { methods?: readonly CamMethod[]; layer?: string; seed?: number; onRow?: (r: MethodRow) => void } = {},
): Promise<FaithfulnessReport> {
  const methods = opts.methods ?? CAM_METHODS;
  const n = images.length / 3072;
  const rows: MethodRow[] = [];
  let targets: Int32Array | null = null;
  let layer = '';
  const add = async (method: MethodRow['method'], maps: Float32Array) => {
    const row = { method, centreShare: centreShare(maps), ...(await faithfulness(model, images, maps, targets!, opts.seed ?? 0)) };
    rows.push(row);
    opts.onRow?.(row);
  };
  for (const m of methods) {
    const r = await camMaps(model, images, m, opts.layer);
    targets = r.targets;
    layer = r.layer;
    await add(m, r.maps);
  }
  if (!targets) targets = (await camMaps(model, images, 'gradcam', opts.layer)).targets;
  await add('random', randomMaps(n, opts.seed ?? 0));
  await add('centre', centrePriorMaps(n));
  return { layer, n, target: 'pred', rows };
}

/** Markdown table of a report, most faithful (ROAD combined) first. */
export function formatFaithfulnessTable(r: FaithfulnessReport): string {
  const f = (x: number) => x.toFixed(4);
  const lines = [
    `${r.n} images, layer ${r.layer}, each image's predicted class explained; ROAD combined = mean over 10..90% of (LeRF - MoRF) / 2 of the target probability (higher = more faithful)`,
    '',
    '| method | ROAD combined | MoRF mean | LeRF mean | deletion AUC (lower better) | insertion AUC (higher better) | centre share (uniform 0.25) |',
    '|---|---|---|---|---|---|---|',
  ];
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  for (const row of [...r.rows].sort((a, b) => b.roadCombined - a.roadCombined))
    lines.push(`| ${row.method} | ${f(row.roadCombined)} | ${f(mean(row.morf))} | ${f(mean(row.lerf))} | ${f(row.deletionAuc)} | ${f(row.insertionAuc)} | ${row.centreShare.toFixed(3)} |`);
  return lines.join('\n');
}
