// cifake sweep: the paper's two-stage topology grid or a user grid, resumable, with a leaderboard.
import { Command, Option } from 'commander';

import { describeConfig, sweep } from '../../src';
import { nonNegativeInt, onInterrupt, positiveInt } from '../cli-helpers';

const { extractorLabel, formatLeaderboard, formatSeconds, planSweep, runSweep, stageLabel, SWEEP_METRICS } = sweep;
type SweepEvent = sweep.SweepEvent;
type SweepMetric = sweep.SweepMetric;
type SweepOptions = sweep.SweepOptions;


interface SweepFlags {
  grid: string;
  data?: string;
  limit?: number;
  epochs?: number;
  seed?: number;
  device?: string;
  outDir: string;
  name?: string;
  parallel: number;
  metric: SweepMetric;
  stage: '1' | '2' | 'all';
  paperExtractor?: boolean;
  only?: string;
  dryRun?: boolean;
  json?: boolean;
  quiet?: boolean;
}

const pct = (x: number | null) => (x === null ? 'n/a' : x.toFixed(4));

function eventLine(e: SweepEvent): string | null {
  switch (e.event) {
    case 'log':
      return e.trial ? `[${e.trial}] ${e.message}` : e.message;
    case 'trial-start':
      return `[${e.index}/${e.total}] ${e.trial}${e.stage ? ` (stage ${stageLabel(e.stage)})` : ''}: ${e.resume ? 'resuming' : 'training'} with ${e.threads} thread(s): ${e.config}`;
    case 'epoch':
      return (
        `[${e.trial}] epoch ${e.epoch}/${e.epochs}: train loss ${e.trainLoss.toFixed(4)} acc ${(e.trainAcc * 100).toFixed(2)}% | ` +
        `val loss ${e.valLoss.toFixed(4)} acc ${(e.valAcc * 100).toFixed(2)}% AUC ${e.valAuc?.toFixed(4) ?? '-'} | ${e.seconds.toFixed(1)} s`
      );
    case 'trial-end':
      if (e.status === 'skipped') return `[${e.trial}] already finished: skipped (metric ${pct(e.metric)})`;
      if (e.status === 'done') return `[${e.trial}] done in ${formatSeconds(e.seconds)}: metric ${pct(e.metric)}`;
      return `[${e.trial}] ${e.status}: ${e.error ?? ''}`;
    case 'selection':
      return null; // logged as a 'log' event too
  }
}

const HELP = `
Sweep folder: <out-dir>/<name>/ with sweep.json, trials.jsonl (one line per trial outcome, errors
included), leaderboard.csv, leaderboard.json and one run directory per trial. Re-running the same
command skips finished trials (metrics.json present), continues interrupted ones from their last
checkpoint and retries failed ones. Every trial uses the base seed.

Grid file (YAML or JSON): a preset, a base config layer and axes over config field paths:
  preset: paper-cnn
  base: { epochs: 5 }
  axes:
    model.convFilters: [[16, 32], [32, 64]]
    optimizer.lr: [1.0e-3, 3.0e-4]

Metrics: val_acc (default), val_auc, test_acc, f1 (test F1 of REAL). Ranking or selecting on a test
metric looks at the test split: prefer val_* for model selection.

Examples:
  cifake sweep --grid paper --data ~/cifake.zip
  cifake sweep --grid paper --data ~/cifake.zip --limit 2000 --epochs 2 --stage 1
  cifake sweep --grid paper --data ~/cifake.zip --paper-extractor --parallel 2
  cifake sweep --grid paper --data ~/cifake.zip --limit 2000 --epochs 2 --stage 1 --only 's1-conv*x16,s1-conv*x32'
  cifake sweep --grid my-grid.yaml --data ~/cifake.zip --metric val_auc`;

/** --dry-run: the trials and their configs. */
function printPlan(opts: SweepOptions, json: boolean): void {
  const plan = planSweep(opts);
  const trials = plan.trials.map((t) => ({
    trial: t.name,
    stage: t.stage,
    params: t.params,
    runDir: t.runDir,
    config: t.config,
    error: t.configError,
  }));
  if (json) {
    process.stdout.write(`${JSON.stringify({ event: 'plan', sweep: plan.sweep, sweepDir: plan.sweepDir, parallel: plan.parallel, threads: plan.threads, stage2: plan.stage2, notes: plan.notes, trials })}\n`);
    return;
  }
  const lines = [
    `sweep ${plan.sweep} -> ${plan.sweepDir}: ${plan.trials.length} trials, ${plan.parallel} at once, ${plan.threads} thread(s) each`,
    ...plan.notes,
    ...plan.trials.map((t) => `  ${t.name}  [${stageLabel(t.stage)}]  ${t.config ? describeConfig(t.config) : `INVALID: ${t.configError}`}`),
  ];
  if (plan.grid.kind === 'paper' && opts.stage !== 1 && !plan.stage2)
    lines.push('  stage 2: 24 dense heads on the best stage-1 extractor, decided after stage 1 (--paper-extractor: on 2x32)');
  else if (plan.stage2) lines.push(`stage 2 extractor: ${extractorLabel(plan.stage2.extractor)} (${plan.stage2.source})`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function sweepAction(f: SweepFlags): Promise<void> {
  const json = !!f.json;
  const say = (line: string) => {
    if (!f.quiet) process.stderr.write(`${line}\n`);
  };
  const opts: SweepOptions = {
    grid: f.grid,
    settings: { data: f.data, limit: f.limit, epochs: f.epochs, seed: f.seed, device: f.device },
    outDir: f.outDir,
    name: f.name,
    parallel: f.parallel,
    metric: f.metric,
    stage: f.stage === 'all' ? 'all' : (Number(f.stage) as 1 | 2),
    paperExtractor: !!f.paperExtractor,
    only: f.only?.split(','),
  };

  if (f.dryRun) return printPlan(opts, json);

  const interrupt = onInterrupt(say, 'stopping the running trials after their current batch');
  try {
    const result = await runSweep({
      ...opts,
      signal: interrupt.signal,
      onEvent: (e) => {
        if (json) process.stdout.write(`${JSON.stringify(e)}\n`);
        else {
          const line = eventLine(e);
          if (line !== null) say(line);
        }
      },
    });
    const lb = result.leaderboard;
    if (json) process.stdout.write(`${JSON.stringify({ event: 'result', ...lb })}\n`);
    else process.stdout.write(`${formatLeaderboard(lb)}\n\nleaderboard: ${lb.sweepDir}/leaderboard.csv, leaderboard.json\n`);
    if (result.interrupted) process.exitCode = 130;
    else if (lb.counts.failed > 0) process.exitCode = 1;
  } finally {
    interrupt.off();
  }
}

export function sweepCommand(): Command {
  return new Command('sweep')
    .description("run a grid of trials (the paper's two-stage topology search, or a user grid) with a leaderboard; re-runs skip finished trials")
    .requiredOption('-g, --grid <paper|file>', "'paper' (Bird & Lotfi's 12 extractors + 24 dense heads) or a grid file (.json, .yaml, .yml)")
    .option('-d, --data <path>', 'CIFAKE zip or folder (default: the grid base, else the embedded demo set)')
    .option('--limit <n>', 'at most N images per class for every trial', positiveInt('--limit'))
    .option('--epochs <n>', 'epochs of every trial (paper grid: 30)', positiveInt('--epochs'))
    .option('--seed <n>', 'the seed of every trial (default: the base config seed, 42)', nonNegativeInt('--seed'))
    .option('--device <d>', 'cpu | cuda | cuda:N | auto')
    .option('--out-dir <dir>', 'parent of the sweep folder', 'runs/sweeps')
    .option('--name <name>', 'sweep folder name (default: the grid name plus -limitN / -epN / -seedN)')
    .option('--parallel <n>', 'trials at once, each with floor(cpus / n) threads (capped at the CPU count)', positiveInt('--parallel'), 1)
    .addOption(new Option('--metric <m>', 'ranking metric, and the stage-1 selection criterion').choices([...SWEEP_METRICS]).default('val_acc'))
    .addOption(new Option('--stage <s>', 'paper grid: run stage 1, stage 2 or all').choices(['1', '2', 'all']).default('all'))
    .option('--only <patterns>', "run only the trials whose names match (comma-separated, * and ? wildcards), e.g. 's1-conv*x32'")
    .option('--paper-extractor', "paper grid: stage 2 on the paper's 2x32 extractor instead of our stage-1 best")
    .option('--dry-run', 'print the trials and their configs; train nothing')
    .option('--json', 'print one JSON object per event (the last: the leaderboard)')
    .option('-q, --quiet', 'print only the leaderboard')
    .addHelpText('after', HELP)
    .action(sweepAction);
}
