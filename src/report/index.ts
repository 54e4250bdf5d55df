/**
 * Reports: a run directory (or a sweep folder) as one self-contained HTML page with Vega-Lite
 * charts (rendered headless to SVG by vega, to PNG by sharp), metrics, Grad-CAM figures,
 * configuration, data summary, timing and versions.
 */
export { writeReport } from './report';
export { findGradcamImages } from './gradcam';
export type { ReportFigure, ReportOptions, ReportResult, RunSummary } from './report';
export { confusionSpec, learningCurvesSpec, perClassSpec, reliabilitySpec, robustnessSpec, rocSpec, scoreHistogramSpec, sweepSpec, thinCurve } from './charts';
export type { CurvePoint, LearningCurveOptions, ReliabilityPoint, RobustnessPoint, RocSeries, SweepPoint } from './charts';
export { renderChart, chartVersions, CHART_FONT } from './render';
export type { ChartSpec, RenderedChart } from './render';
export { computeRunScores, readRunScores, RunAssets, scoreFileNames, SCORE_SPLITS } from './scores';
export type { RunAssetsOptions, ScoreSplit, SplitScores } from './scores';
export { explainRun, GRADCAM_DIR } from './gradcam';
export type { ExplainRunOptions, ExplainRunResult } from './gradcam';
export { readLeaderboard, LEADERBOARD_FILE } from './sweep';
export type { LeaderboardTable, LeaderboardTableRow } from './sweep';
