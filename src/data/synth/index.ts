/**
 * Deterministic generator of a small CIFAKE-shaped *demo* data set.
 *
 * `cifake train` without `--data` must work on a fresh machine with no
 * download, so this module renders a synthetic stand-in for CIFAKE: 32x32 RGB
 * JPEGs (quality 75) in the Kaggle layout `train/REAL`, `train/FAKE`,
 * `test/REAL`, `test/FAKE` (labels FAKE = 0, REAL = 1).
 *
 * It is a demo that exercises the whole pipeline (decode, train, evaluate,
 * explain, serve). It is NOT a detector benchmark and numbers measured on it
 * say nothing about CIFAKE or about real AI-generated images.
 *
 * Image model (both classes share one procedural scene generator: a background
 * (horizon split, linear or radial gradient), 0-5 shapes (ellipses, rotated
 * rectangles, triangles, metaball blobs) with shading, a 1/f ("pink")
 * value-noise texture, vignette and gamma):
 *  - REAL: rendered directly at 32x32 with 2x2 supersampled (sharp) edges, the
 *    full texture spectrum and per-pixel sensor-like noise. Some are
 *    defocused or upsampled from 24-28 px (as many CIFAR photos are), so the
 *    classes overlap.
 *  - FAKE: the same scenes carrying diffusion-like traces, each with a random
 *    per-image strength: rendered at 16-28 px and bilinearly upsampled to 32,
 *    attenuated fine texture (over-smoothing), little or no sensor noise,
 *    boosted saturation, and a faint periodic pattern of period 8 px (as left
 *    by latent-diffusion VAE decoders).
 *
 * Every image has its own PRNG stream derived from (seed, split, class,
 * index), so the output is byte-identical for a given seed and sharp/libvips
 * build, whatever the write order.
 */
export { SYNTH_MARKER, SYNTH_README, SYNTH_VERSION, synthFileName } from './options';
export type { SynthClass, SynthCounts, SynthMarker, SynthOptions, SynthResult, SynthSplit } from './options';
export { renderSynthImage, synthImageSeed } from './render';
export { defaultSynthDir, ensureSynth, readSynthMarker, synthesize } from './dataset';
