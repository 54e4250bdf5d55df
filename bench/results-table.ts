// The README's results table from finished run directories: test metrics with and without the
// images of an exclude list (CIFAKE's test/FAKE files that duplicate train files). Reads each run's
// metrics.json, history.jsonl and scores-test.json; runs without scores are evaluated again.
//   npx tsx bench/results-table.ts runs/paper-cnn runs/lightweight-paper runs/hoc-paper \
//     --exclude-list ../shared/data/test-fake-duplicates.txt
import path from 'node:path';

import { computeMetrics, type MetricsReport } from '../src/metrics';
import { evaluate, readExcludeList } from '../src/train/evaluate';
import { readHistory, readRunConfig, readRunDataSummary, readRunSummary, readScoresFile, resolveRunData, RUN_FILES } from '../src/run';
import type { EpochLog } from '../src/train/fit';

const args = process.argv.slice(2);
const ex = args.indexOf('--exclude-list');
const excludeList = ex >= 0 ? args.splice(ex, 2)[1] : undefined;
const excluded = excludeList ? readExcludeList(excludeList) : null;
const key = (p: string) => p.split('/').slice(-3).join('/').toLowerCase();

const pct = (x: number) => (x * 100).toFixed(2) + '%';
const f4 = (x: number | null) => (x === null ? '-' : x.toFixed(4));
const row = (m: MetricsReport) => `${pct(m.accuracy)} | ${f4(m.precision.REAL)} | ${f4(m.recall.REAL)} | ${f4(m.f1.REAL)} | ${f4(m.rocAuc)}`;

console.log('| run | model | params | epochs run (best) | training time | test acc | P REAL | R REAL | F1 REAL | ROC-AUC | test acc without duplicates (n) |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
async function testScores(dir: string, data: string): Promise<{ files: string[]; labels: number[]; logits: number[] }> {
  try {
    const s = readScoresFile(path.join(dir, RUN_FILES.scores('test')));
    if (!s.logits || !s.files) throw new Error('no logits');
    return { files: s.files, labels: s.labels, logits: s.logits };
  } catch {
    const r = await evaluate(dir, { data, split: 'test', scores: true });
    return { files: r.scores!.files, labels: Array.from(r.scores!.labels), logits: Array.from(r.scores!.logits) };
  }
}

async function main() {
for (const dir of args) {
  const m = readRunSummary(dir);
  if (!m) throw new Error(`${dir}: no ${RUN_FILES.metrics} (unfinished run)`);
  const config = readRunConfig(dir);
  const history = readHistory<EpochLog>(dir);
  const scores = await testScores(dir, await resolveRunData(dir, config, readRunDataSummary(dir)));
  const test = m.metrics.test ?? computeMetrics(scores.logits, scores.labels, { fromLogits: true });
  let without = '-';
  if (excluded) {
    const keep = scores.files.map((f, i) => (excluded.has(key(f)) ? -1 : i)).filter((i) => i >= 0);
    const mm = computeMetrics(keep.map((i) => scores.logits[i]), keep.map((i) => scores.labels[i]), { fromLogits: true });
    without = `${pct(mm.accuracy)} (${keep.length})`;
  }
  const minutes = (m.trainSeconds / 60).toFixed(0);
  console.log(
    `| ${path.basename(dir)} | ${config.model.family} | ${m.parameters} | ${history.length} (${m.bestEpoch}) | ${minutes} min, ${m.device} | ${row(test)} | ${without} |`,
  );
}
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
