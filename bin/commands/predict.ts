// cifake predict: P(REAL) of image files; a bad file is reported in its row and the others go on (exit 1 at the end).
import { Command } from 'commander';

import { Classifier, describeCheckpoint } from '../../src';
import { num, print, threadsArg } from '../cli-helpers';

interface PredictFlags {
  model: string;
  device: string;
  threads?: number;
  threshold?: number;
  json?: boolean;
}

interface Row {
  file: string;
  pReal: number | null;
  label: string;
  error?: string;
}

function table(rows: Row[]): string {
  const width = Math.max(4, ...rows.map((r) => r.file.length));
  const line = (r: Row) => `${r.file.padEnd(width)}  ${r.pReal === null ? '   -   ' : r.pReal.toFixed(4).padStart(7)}  ${r.label}${r.error ? ` (${r.error})` : ''}`;
  return [`${'file'.padEnd(width)}  P(REAL)  label`, ...rows.map(line)].join('\n');
}

export function predictCommand(): Command {
  return new Command('predict')
    .description('classify image files (JPEG, PNG, WebP; other sizes are resized to 32x32)')
    .option('-m, --model <runOrCheckpoint>', 'run directory, checkpoint file, or pretrained (default: the weights shipped in the package)')
    .argument('<images...>', 'image files')
    .option('--device <d>', 'cpu | cuda | cuda:N | auto', 'cpu')
    .option('--threads <n>', 'CPU threads (default: all available)', threadsArg)
    .option('--threshold <x>', 'decision threshold on P(REAL)', num('--threshold'))
    .option('--json', 'JSON output')
    .addHelpText('after', '\nExample:\n  cifake predict --model runs/hoc photo1.jpg photo2.png')
    .action(async (images: string[], o: PredictFlags) => {
      const clf = await Classifier.load(o.model, { device: o.device, threads: o.threads, threshold: o.threshold });
      if (!o.json) process.stderr.write(`model: ${describeCheckpoint(clf.info.checkpoint)}\n`);
      try {
        const rows: Row[] = [];
        for (const file of images) {
          try {
            const p = (await clf.predictBatch([file]))[0];
            rows.push({ file, pReal: p.pReal, label: p.label });
          } catch (e) {
            rows.push({ file, pReal: null, label: 'ERROR', error: (e as Error).message });
            process.exitCode = 1;
          }
        }
        print(!!o.json, rows, table(rows));
      } finally {
        clf.dispose();
      }
    });
}
