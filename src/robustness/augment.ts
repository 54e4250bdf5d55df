/**
 * Training-time robustness augmentation: a per-epoch pass over the uint8 train images that
 * degrades a share of them the way images in the wild are degraded (a blur, a down-up resize or
 * noise, then independently a JPEG re-save at a random quality). Every draw comes from a stream of
 * (seed, epoch, image), so an epoch's images are the same on a resumed run, whatever ran before.
 */
import { jpegRoundTrip } from './jpeg';
import { applyStepToImage, streamFor, type PerturbationStep } from './perturb';

export type RobustOp = 'blur' | 'resize' | 'noise';

export interface RobustAugmentConfig {
  /** probability that an image gets one pixel degradation (one of `ops`) */
  probability: number;
  /** probability that an image is re-saved as JPEG (after any pixel degradation) */
  jpegProbability: number;
  ops: RobustOp[];
  /** inclusive ranges the strengths are drawn from, uniformly */
  jpegQuality: [number, number];
  blurSigma: [number, number];
  resizeTo: [number, number];
  noiseSigma: [number, number];
}

const uniform = (r: () => number, [lo, hi]: [number, number]) => lo + (hi - lo) * r();
const uniformInt = (r: () => number, [lo, hi]: [number, number]) => Math.min(hi, lo + Math.floor((hi - lo + 1) * r()));

/** The degradation drawn for one image of one epoch (exposed for tests and inspection). */
export function drawDegradation(cfg: RobustAugmentConfig, seed: number, epoch: number, image: number): { step: PerturbationStep | null; jpeg: number } {
  const r = streamFor(seed ^ 0x5bd1e995, image, epoch);
  let step: PerturbationStep | null = null;
  if (cfg.ops.length && r() < cfg.probability) {
    const op = cfg.ops[Math.min(cfg.ops.length - 1, Math.floor(r() * cfg.ops.length))];
    if (op === 'blur') step = { name: 'blur', value: uniform(r, cfg.blurSigma) };
    else if (op === 'resize') step = { name: 'resize', value: uniformInt(r, cfg.resizeTo) };
    else step = { name: 'noise', value: uniform(r, cfg.noiseSigma) };
  }
  const jpeg = r() < cfg.jpegProbability ? uniformInt(r, cfg.jpegQuality) : 0;
  return { step, jpeg };
}

/** This epoch's degraded copy of `images` (N x 3 x size x size uint8); the input is not modified. */
export async function robustEpochImages(images: Uint8Array, cfg: RobustAugmentConfig, seed: number, epoch: number, size = 32): Promise<Uint8Array> {
  const per = 3 * size * size;
  const n = images.length / per;
  const out = new Uint8Array(images);
  const qualities = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const { step, jpeg } = drawDegradation(cfg, seed, epoch, i);
    qualities[i] = jpeg;
    if (step) out.set(applyStepToImage(out.subarray(i * per, (i + 1) * per), size, step, streamFor(seed, i, epoch + 1)), i * per);
  }
  return qualities.some((q) => q > 0) ? jpegRoundTrip(out, qualities, size) : out;
}
