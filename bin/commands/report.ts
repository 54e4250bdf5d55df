// cifake report: a run directory (or a sweep folder) as one self-contained HTML page plus PNG charts.
import { Command } from 'commander';

import { report } from '../../src';
import { positiveInt, threadsArg } from '../cli-helpers';


interface ReportFlags {
  out?: string;
  scores: boolean;
  gradcam: boolean;
  gradcamLimit?: number;
  data?: string;
  device?: string;
  threads?: number;
  json?: boolean;
  quiet?: boolean;
}

export function reportCommand(): Command {
  return new Command('report')
    .description('write an HTML report of a run (learning curves, confusion matrix, ROC, per-class scores, Grad-CAM, config, data, timing) or of a sweep folder (leaderboard, accuracy vs parameters)')
    .argument('<dir>', 'run directory, or sweep folder (with leaderboard.json)')
    .option('-o, --out <file>', 'HTML file to write; PNG figures go next to it as <name>-<chart>.png (default <dir>/report.html)')
    .option('--no-scores', 'do not load the model to compute per-image scores when the run has no scores-<split>.json (no ROC curve then)')
    .option('--no-gradcam', 'do not compute Grad-CAM figures when the run has no gradcam/ PNGs')
    .option('--gradcam-limit <n>', 'explain at most N images for the Grad-CAM figures (evenly spaced; default 2000)', positiveInt('--gradcam-limit'))
    .option('-d, --data <path>', 'dataset for computing scores and Grad-CAM, when the one the run recorded has moved')
    .option('--device <d>', 'cpu | cuda | cuda:N | auto, for computing scores and Grad-CAM')
    .option('--threads <n>', 'CPU threads for computing scores and Grad-CAM', threadsArg)
    .option('--json', 'print the result as JSON')
    .option('-q, --quiet', 'print only the path of the report')
    .addHelpText('after', '\nExamples:\n  cifake report runs/hoc\n  cifake report runs/sweeps/paper --out /tmp/sweep.html')
    .action(async (dir: string, f: ReportFlags) => {
      const opts: report.ReportOptions = {
        out: f.out,
        computeScores: f.scores,
        gradcam: f.gradcam,
        gradcamLimit: f.gradcamLimit,
        data: f.data,
        device: f.device,
        threads: f.threads,
        onLog: f.json || f.quiet ? undefined : (m) => process.stderr.write(`${m}\n`),
      };
      const r = await report.writeReport(dir, opts);
      if (f.json) {
        process.stdout.write(`${JSON.stringify(r)}\n`);
        return;
      }
      const lines = [r.html];
      if (!f.quiet) {
        lines.push(...r.figures.map((x) => `  ${x.png} (${x.pngWidth}x${x.pngHeight})`));
        lines.push(...r.notes.map((n) => `note: ${n}`));
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
