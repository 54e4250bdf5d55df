// The README's results table from finished run directories: test metrics with and without the
// images of an exclude list (CIFAKE's test/FAKE files that duplicate train files). Reads each run's
// metrics.json and scores-test.json; runs without scores are evaluated again.
//   npx tsx bench/results-table.ts runs/paper-cnn runs/lightweight-paper runs/hoc-paper \
//     --exclude-list ../shared/data/test-fake-duplicates.txt
// --spread also prints, per group of runs that differ only in a trailing -s<seed> in their names
// (hoc-paper-s1, hoc-paper-s2, ...), the mean +- sample sd and min-max of the test figures.
// --ensemble also prints the figures of the runs' mean test probability (one model of all their
// parameters; their test files must be the same, in the same order).
import path from 'node:path';

import { describeModel } from '../src/config';
import { computeMetrics, sigmoid, type MetricsReport } from '../src/metrics';
import { evaluate, readExcludeList } from '../src/train/evaluate';
import { readRunConfig, readRunDataSummary, readRunSummary, readScoresFile, resolveRunData, RUN_FILES } from '../src/run';

const args = process.argv.slice(2);
const ex = args.indexOf('--exclude-list');
const excludeList = ex >= 0 ? args.splice(ex, 2)[1] : undefined;
const excluded = excludeList ? readExcludeList(excludeList) : null;
const sp = args.indexOf('--spread');
const spread = sp >= 0 && args.splice(sp, 1).length > 0;
const en = args.indexOf('--ensemble');
const ensemble = en >= 0 && args.splice(en, 1).length > 0;
const key = (p: string) => p.split('/').slice(-3).join('/').toLowerCase();

const pct = (x: number) => (x * 100).toFixed(2) + '%';
const f4 = (x: number | null) => (x === null ? '-' : x.toFixed(4));
const row = (m: MetricsReport) => `${pct(m.accuracy)} | ${f4(m.precision.REAL)} | ${f4(m.recall.REAL)} | ${f4(m.f1.REAL)} | ${f4(m.rocAuc)}`;

console.log('| run | model | params | epochs run (best) | training time | test acc | P REAL | R REAL | F1 REAL | ROC-AUC | test acc without duplicates (n) |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
interface TestScores {
  files: string[];
  labels: number[];
  logits: number[];
}

async function testScores(dir: string, data: string): Promise<TestScores> {
  try {
    const s = readScoresFile(path.join(dir, RUN_FILES.scores('test')));
    if (!s.logits || !s.files) throw new Error('no logits');
    return { files: s.files, labels: s.labels, logits: s.logits };
  } catch {
    const r = await evaluate(dir, { data, split: 'test', scores: true });
    return { files: r.scores!.files, labels: Array.from(r.scores!.labels), logits: Array.from(r.scores!.logits) };
  }
}

interface Figures {
  accuracy: number;
  auc: number | null;
  withoutDuplicates: number | null;
}

function spreadOf(xs: number[]): string {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : NaN;
  const scale = (x: number) => (mean > 1.5 ? x.toFixed(2) : x.toFixed(4));
  return `${scale(mean)} +- ${Number.isNaN(sd) ? '-' : scale(sd)} | ${scale(Math.min(...xs))}-${scale(Math.max(...xs))}`;
}

function printSpread(groups: Map<string, Figures[]>): void {
  console.log('\n| runs | seeds | test acc % mean +- sd | min-max | ROC-AUC mean +- sd | min-max | acc % without duplicates mean +- sd | min-max |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const [group, runs] of groups) {
    const aucs = runs.flatMap((r) => (r.auc === null ? [] : [r.auc]));
    const without = runs.flatMap((r) => (r.withoutDuplicates === null ? [] : [r.withoutDuplicates * 100]));
    console.log(`| ${group} | ${runs.length} | ${spreadOf(runs.map((r) => r.accuracy * 100))} | ${aucs.length ? spreadOf(aucs) : '- | -'} | ${without.length ? spreadOf(without) : '- | -'} |`);
  }
}

interface Member {
  dir: string;
  parameters: number;
  scores: TestScores;
}

/** `scores` are logits, or P(REAL) where `fromLogits` is false. */
function withoutExcluded(files: string[], scores: number[], labels: number[], fromLogits = true): { text: string; accuracy: number | null } {
  if (!excluded) return { text: '-', accuracy: null };
  const keep = files.map((f, i) => (excluded.has(key(f)) ? -1 : i)).filter((i) => i >= 0);
  const m = computeMetrics(keep.map((i) => scores[i]), keep.map((i) => labels[i]), { fromLogits });
  return { text: `${pct(m.accuracy)} (${keep.length})`, accuracy: m.accuracy };
}

function printEnsemble(members: Member[]): void {
  const [first, ...rest] = members;
  for (const m of rest) {
    const same = m.scores.files.length === first.scores.files.length && m.scores.files.every((f, i) => f === first.scores.files[i]);
    if (!same) throw new Error(`--ensemble: ${m.dir} scored other test files than ${first.dir}`);
  }
  const meanProbs = first.scores.logits.map((_, i) => members.reduce((a, m) => a + sigmoid(m.scores.logits[i]), 0) / members.length);
  const test = computeMetrics(meanProbs, first.scores.labels);
  const params = members.reduce((a, m) => a + m.parameters, 0);
  const names = members.map((m) => path.basename(m.dir)).join(' + ');
  const without = withoutExcluded(first.scores.files, meanProbs, first.scores.labels, false);
  console.log(`\n| ensemble (mean probability) | params | test acc | P REAL | R REAL | F1 REAL | ROC-AUC | test acc without duplicates (n) |`);
  console.log('|---|---|---|---|---|---|---|---|');
  console.log(`| ${names} | ${params} | ${row(test)} | ${without.text} |`);
}

async function main() {
const groups = new Map<string, Figures[]>();
const members: Member[] = [];
for (const dir of args) {
  const m = readRunSummary(dir);
  if (!m) throw new Error(`${dir}: no ${RUN_FILES.metrics} (unfinished run)`);
  const config = readRunConfig(dir);
  const scores = await testScores(dir, await resolveRunData(dir, config, readRunDataSummary(dir)));
  const test = m.metrics.test ?? computeMetrics(scores.logits, scores.labels, { fromLogits: true });
  const { text: without, accuracy: withoutAccuracy } = withoutExcluded(scores.files, scores.logits, scores.labels);
  members.push({ dir, parameters: m.parameters, scores });
  const group = path.basename(dir).replace(/-s\d+$/, '');
  groups.set(group, [...(groups.get(group) ?? []), { accuracy: test.accuracy, auc: test.rocAuc, withoutDuplicates: withoutAccuracy }]);
  const minutes = (m.trainSeconds / 60).toFixed(0);
  console.log(
    `| ${path.basename(dir)} | ${describeModel(config.model)} | ${m.parameters} | ${m.epochsRun} (${m.bestEpoch}) | ${minutes} min, ${m.device} | ${row(test)} | ${without} |`,
  );
}
if (spread) printSpread(groups);
if (ensemble) {
  if (members.length < 2) throw new Error('--ensemble needs two runs or more');
  printEnsemble(members);
}
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
