// cifake import: safetensors weights with the reference module's names (trained in PyTorch, or
// exported here) -> a cifake-torch checkpoint that every command loads.
import { Command, InvalidArgumentError } from 'commander';

import { importSafetensors } from '../../src/export';

const positive = (v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`--temperature must be a number > 0, got '${v}'`);
  return n;
};

export function importCommand(): Command {
  return new Command('import')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .description('turn safetensors weights (names of `cifake export --print-pytorch`) into a cifake-torch checkpoint')
    .requiredOption('--safetensors <file>', 'weights file')
    .option('--config <json>', "training config (file or inline JSON) giving the architecture (default: the file's metadata)")
    .requiredOption('-o, --out <checkpoint>', 'checkpoint to write (.pt)')
    .option('--temperature <t>', 'logit temperature to store as its calibration (default: the file metadata, else none)', positive)
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nExample:\n  cifake import --safetensors my_torch_model.safetensors --config \'{"model":{"family":"lightweight","convFilters":[32,64],"dense":[64]}}\' --out mine.pt')
    .action(async (o: { safetensors: string; config?: string; out: string; temperature?: number; json?: boolean }) => {
      const r = await importSafetensors({ safetensors: o.safetensors, config: o.config, out: o.out, temperature: o.temperature });
      process.stdout.write(o.json ? `${JSON.stringify(r)}\n` : `${r.checkpoint}: ${r.spec.family} checkpoint, ${r.tensors} tensors from ${o.safetensors}\n`);
    });
}
