// cifake calibrate: fit a finished run's temperature and Youden threshold on its validation scores
// (training does this itself; this re-does it for runs trained before, or after editing scores).
import { Command } from 'commander';

import { calibrateRun } from '../../src';

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

export function calibrateCommand(): Command {
  return new Command('calibrate')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .description("fit a run's temperature (log loss) and Youden threshold on its validation scores; store them in its final checkpoint")
    .requiredOption('-m, --model <run>', 'run directory (with scores-val.json)')
    .option('--json', 'machine-readable output')
    .action(async (o: { model: string; json?: boolean }) => {
      const c = await calibrateRun(o.model);
      if (o.json) {
        process.stdout.write(`${JSON.stringify(c, null, 2)}\n`);
        return;
      }
      const lines = [`${o.model}: temperature ${c.temperature.toFixed(4)}, Youden threshold ${c.youdenThreshold.toFixed(4)} (fitted on validation, n ${c.val.n}); stored in ${c.checkpoint}`];
      for (const [name, s] of [['val', c.val], ['test', c.test]] as const) {
        if (!s) continue;
        lines.push(`  ${name}: accuracy ${pct(s.accuracyAt05)} at 0.5, ${pct(s.accuracyAtYouden)} at the Youden threshold; ECE ${s.eceBefore.toFixed(4)} -> ${s.eceAfter.toFixed(4)}; log loss ${s.logLossBefore.toFixed(4)} -> ${s.logLossAfter.toFixed(4)}`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
