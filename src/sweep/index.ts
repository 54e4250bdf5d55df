// Hyper-parameter / topology sweeps: the paper's two-stage grid and user grids (see grid.ts, run.ts).
export {
  GridError,
  PAPER_CONV_FILTERS,
  PAPER_CONV_LAYERS,
  PAPER_DENSE_LAYERS,
  PAPER_DENSE_UNITS,
  PAPER_EXTRACTOR,
  PAPER_PRESET,
  defaultSweepName,
  expandGrid,
  extractorLabel,
  loadGridFile,
  paperGrid,
  paperGridSpec,
  paperStage1,
  paperStage2,
  parseGrid,
  setPath,
  trialNames,
} from './grid';
export type { Axis, Extractor, GridSpec, TrialSpec } from './grid';
export { canonicalJson } from '../util/canonical-json';
export {
  SWEEP_METRICS,
  formatLeaderboard,
  formatSeconds,
  isSweepMetric,
  layersLabel,
  leaderboardCsv,
  metricValue,
  rankRows,
  stageLabel,
} from './leaderboard';
export type { Leaderboard, LeaderboardRow, RunSummary, StageSelection, SweepMetric, TrialStatus } from './leaderboard';
export { planSweep, readTrialRecords, runSweep, SWEEP_FILES, trialFilter } from './run';
export type { PlannedTrial, SweepEvent, SweepOptions, SweepPlan, SweepResult, SweepSettings } from './run';
