// Public API of cifake-torch.
export { Classifier, ImageInputError } from './classifier';
export type { ClassifierInfo, ClassifierOptions, ClassifierStats, ImageInput, Prediction, RawImage } from './classifier';
export { CifakeModel } from './model';
export type { CheckpointMeta, EpochProgress, EpochResult, GradCamResult, ModelOptions } from './model';
export { train, TrainingInterrupted, NonFiniteLoss } from './train/fit';
export type { EpochLog, RunResult, TrainCallbacks, TrainOptions } from './train/fit';
export { evaluate } from './train/evaluate';
export type { EvaluateOptions, EvaluateResult } from './train/evaluate';
export { EarlyStopping } from './train/early-stopping';
export { PRESETS, PRESET_NAMES, resolveConfig, validateConfig, modelSpecOf, ConfigError } from './config';
export type { TrainConfig, TrainConfigInput, PresetName } from './config';
export * as metrics from './metrics';
export * as data from './data';
export * as gradcam from './gradcam';
export * as sweep from './sweep';
export * as report from './report';
export { loadNative } from './native';
export { packageVersion } from './version';
