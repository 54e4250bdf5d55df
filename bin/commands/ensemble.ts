// cifake ensemble: trained runs of one architecture as one model whose logit is their mean.
import { Command } from 'commander';

import { composeEnsemble } from '../../src';
import { metricsTable, print } from '../cli-helpers';

export function ensembleCommand(): Command {
  return new Command('ensemble')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .description('combine trained runs of one architecture into one model (logits averaged), calibrated on the validation images all of them held out')
    .argument('<members...>', 'run directories (or checkpoints: then no scores or calibration)')
    .requiredOption('-o, --out <runDir>', 'the ensemble run directory to create')
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nExample:\n  cifake ensemble runs/res-ema-s42 runs/res-ema-s1 --out runs/res-ema-pair\n  cifake eval --model runs/res-ema-pair --data ~/cifake.zip')
    .action(async (members: string[], o: { out: string; json?: boolean }) => {
      const r = await composeEnsemble(members, { out: o.out, log: o.json ? undefined : (m) => process.stderr.write(`${m}\n`) });
      const lines = [`${r.checkpoint}: ensemble of ${r.members.length} (${r.parameters} parameters)`];
      for (const m of r.members) lines.push(`  member ${m.checkpoint} (seed ${m.seed}${m.testAccuracy === null ? '' : `, test accuracy ${(m.testAccuracy * 100).toFixed(2)}%`})`);
      if (r.val) lines.push(metricsTable(`validation (the ${r.valImages} images every member held out)`, r.val));
      if (r.test) lines.push(metricsTable('test (mean of the members\u2019 logits)', r.test));
      if (r.calibration) lines.push(`calibration (fitted on that validation): temperature ${r.calibration.temperature.toFixed(3)}, Youden threshold ${r.calibration.youdenThreshold.toFixed(3)}`);
      print(!!o.json, r, lines.join('\n'));
    });
}
