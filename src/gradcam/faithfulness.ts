/**
 * Faithfulness of saliency maps, measured with the model itself, in batches:
 *  - ROAD (Rong et al. 2022, remove and debias): the most (MoRF) or least (LeRF) relevant p% of
 *    pixels are replaced by a noisy linear imputation from their neighbours (so removal leaves no
 *    tell-tale shape), at p = 10..90%; the score is the drop of the target probability. A faithful map
 *    makes MoRF fall fast and LeRF slowly; `combined` = mean over p of (LeRF(p) - MoRF(p)) / 2 of the
 *    target probability (higher = more faithful; a random map is near 0).
 *  - deletion / insertion AUC (Petsiuk et al. 2018): the target probability while the most relevant
 *    pixels are set to 0 (deletion: lower AUC = better), or copied into a blurred copy (insertion:
 *    higher = better), at 0, 10, ..., 100% of the pixels.
 * Baselines every method must beat: a random map and a centre-prior (Gaussian) map.
 * The target probability is sigmoid(+logit) for REAL and sigmoid(-logit) for FAKE.
 */
import { perturbImages, streamFor } from '../robustness/perturb';

export interface LogitModel {
  predictLogits(images: Uint8Array): Promise<Float32Array>;
}

export const ROAD_PERCENTILES = [10, 20, 30, 40, 50, 60, 70, 80, 90] as const;
export const CURVE_FRACTIONS = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1] as const;

export interface FaithfulnessScores {
  /** mean target probability of the clean images */
  base: number;
  /** mean target probability after MoRF / LeRF removal at each ROAD percentile */
  morf: number[];
  lerf: number[];
  /** mean over percentiles of (LeRF - MoRF) / 2: higher = more faithful */
  roadCombined: number;
  /** area under the mean target probability while deleting / inserting the most relevant pixels */
  deletionAuc: number;
  insertionAuc: number;
}

const SIDE = 32, HW = SIDE * SIDE, PER = 3 * HW;

/** Pixel order of a map, most relevant first (ties broken by index, so the order is deterministic). */
function ranking(map: Float32Array): Uint32Array {
  const idx = Uint32Array.from({ length: map.length }, (_, i) => i);
  return idx.sort((a, b) => map[b] - map[a] || a - b);
}

/**
 * Noisy linear imputation (ROAD): each removed pixel becomes the weighted mean of its 8 neighbours
 * (1/6 for edge neighbours, 1/12 for diagonal ones, renormalised at borders), solved jointly for all
 * removed pixels by successive over-relaxation, plus Gaussian noise (sigma 0.01 of the range).
 */
export function imputeNoisyLinear(image: Uint8Array, removed: Uint8Array, rand: () => number, noise = 0.01 * 255): Uint8Array {
  const x = Float64Array.from(image);
  const nb: [number, number, number][] = [[-1, 0, 1 / 6], [1, 0, 1 / 6], [0, -1, 1 / 6], [0, 1, 1 / 6], [-1, -1, 1 / 12], [-1, 1, 1 / 12], [1, -1, 1 / 12], [1, 1, 1 / 12]];
  const holes: number[] = [];
  for (let p = 0; p < HW; p++) if (removed[p]) holes.push(p);
  for (let c = 0; c < 3; c++) {
    const o = c * HW;
    let mean = 0, known = 0;
    for (let p = 0; p < HW; p++) if (!removed[p]) (mean += x[o + p], known++);
    for (const p of holes) x[o + p] = known ? mean / known : 127.5;
    for (let it = 0; it < 300; it++) {
      let change = 0;
      for (const p of holes) {
        const py = (p / SIDE) | 0, px = p % SIDE;
        let s = 0, w = 0;
        for (const [dy, dx, wt] of nb) {
          const y = py + dy, xx = px + dx;
          if (y < 0 || y >= SIDE || xx < 0 || xx >= SIDE) continue;
          s += wt * x[o + y * SIDE + xx];
          w += wt;
        }
        const v = s / w, old = x[o + p];
        x[o + p] = old + 1.7 * (v - old);
        change = Math.max(change, Math.abs(x[o + p] - old));
      }
      if (change < 0.05) break;
    }
  }
  const out = new Uint8Array(image);
  for (let c = 0; c < 3; c++)
    for (const p of holes) {
      const u = 1 - rand(), g = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
      out[c * HW + p] = Math.min(255, Math.max(0, Math.round(x[c * HW + p] + noise * g)));
    }
  return out;
}

async function targetProbs(model: LogitModel, images: Uint8Array, targets: ArrayLike<number>): Promise<Float64Array> {
  const logits = await model.predictLogits(images);
  return Float64Array.from(logits, (z, i) => 1 / (1 + Math.exp(targets[i] === 1 ? -z : z)));
}

const mean = (xs: ArrayLike<number>) => Array.from(xs).reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

function trapezoid(ys: number[], xs: readonly number[]): number {
  let a = 0;
  for (let k = 1; k < ys.length; k++) a += ((ys[k] + ys[k - 1]) / 2) * (xs[k] - xs[k - 1]);
  return a;
}

/** ROAD and deletion/insertion scores of N maps (N x 32 x 32, any scale) for N images and their targets (1 REAL, 0 FAKE). */
export async function faithfulness(model: LogitModel, images: Uint8Array, maps: Float32Array, targets: ArrayLike<number>, seed = 0): Promise<FaithfulnessScores> {
  const n = images.length / PER;
  if (maps.length !== n * HW) throw new RangeError(`faithfulness: ${maps.length / HW} maps for ${n} images`);
  const orders = Array.from({ length: n }, (_, i) => ranking(maps.subarray(i * HW, (i + 1) * HW)));
  const base = mean(await targetProbs(model, images, targets));

  const road = async (p: number, most: boolean) => {
    const batch = new Uint8Array(images.length);
    const k = Math.round((p / 100) * HW);
    for (let i = 0; i < n; i++) {
      const removed = new Uint8Array(HW);
      const order = orders[i];
      for (let j = 0; j < k; j++) removed[most ? order[j] : order[HW - 1 - j]] = 1;
      batch.set(imputeNoisyLinear(images.subarray(i * PER, (i + 1) * PER), removed, streamFor(seed, i, p * 2 + (most ? 1 : 0))), i * PER);
    }
    return mean(await targetProbs(model, batch, targets));
  };
  const morf: number[] = [], lerf: number[] = [];
  for (const p of ROAD_PERCENTILES) {
    morf.push(await road(p, true));
    lerf.push(await road(p, false));
  }

  const blurred = await perturbImages(images, 'blur:3');
  const curve = async (insert: boolean) => {
    const ys: number[] = [];
    for (const f of CURVE_FRACTIONS) {
      const k = Math.round(f * HW);
      const batch = insert ? new Uint8Array(blurred) : new Uint8Array(images);
      for (let i = 0; i < n; i++)
        for (let j = 0; j < k; j++) {
          const px = orders[i][j];
          for (let c = 0; c < 3; c++) batch[i * PER + c * HW + px] = insert ? images[i * PER + c * HW + px] : 0;
        }
      ys.push(mean(await targetProbs(model, batch, targets)));
    }
    return trapezoid(ys, CURVE_FRACTIONS);
  };
  return {
    base,
    morf,
    lerf,
    roadCombined: mean(morf.map((m, k) => (lerf[k] - m) / 2)),
    deletionAuc: await curve(false),
    insertionAuc: await curve(true),
  };
}

/** N random maps (uniform per pixel, seeded): the floor every method must clear. */
export function randomMaps(n: number, seed = 0): Float32Array {
  const out = new Float32Array(n * HW);
  for (let i = 0; i < n; i++) {
    const r = streamFor(seed, i, 999);
    for (let p = 0; p < HW; p++) out[i * HW + p] = r();
  }
  return out;
}

/** N copies of a centred Gaussian (sigma 8 px): "the object is in the middle". */
export function centrePriorMaps(n: number, sigma = 8): Float32Array {
  const one = new Float32Array(HW);
  for (let y = 0; y < SIDE; y++)
    for (let x = 0; x < SIDE; x++) one[y * SIDE + x] = Math.exp(-((x - 15.5) ** 2 + (y - 15.5) ** 2) / (2 * sigma * sigma));
  const out = new Float32Array(n * HW);
  for (let i = 0; i < n; i++) out.set(one, i * HW);
  return out;
}
