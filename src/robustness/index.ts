// Robustness: perturbations of planar uint8 images, their evaluation, and the `cifake robustness` run.
export * from './perturb';
export { jpegRoundTrip } from './jpeg';
export * from './evaluate';
export * from './run';
export * from './augment';
