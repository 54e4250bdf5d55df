// Everything a run directory (and a sweep folder's leaderboard) holds, with one typed read/write
// pair per file: see run-dir.ts for the layout.
export {
  createRunDir,
  discardUnstartedRun,
  endCheckpoint,
  isRunDir,
  readHistory,
  readRunCalibration,
  readRunRobustness,
  readRunConfig,
  readRunDataSummary,
  readRunSummary,
  resolveCheckpoint,
  RUN_FILES,
  timestampName,
  writeHistory,
  writeRunCalibration,
  writeRunRobustness,
  writeRunConfig,
  writeRunDataSummary,
  writeRunSummary,
} from './run-dir';
export type { RunDataSummary, RunSummary, StopReason } from './run-dir';
export { readScoresFile, scoreFileNames, writeScores } from './scores';
export type { ScoresFile, ScoresRead } from './scores';
export { GRADCAM_DIR, gradcamFolderFiles, gradcamImagePng, writeFaithfulnessJson, writeGradcamFolder, writeGradcamJson, writeGradcamPng } from './gradcam';
export type { GradcamFolderFiles, GradcamFolderOptions } from './gradcam';
export { LEADERBOARD_FILES, leaderboardCsv, readLeaderboardFile, writeLeaderboard } from './leaderboard';
export { resolveData, resolveRunData } from './data';
