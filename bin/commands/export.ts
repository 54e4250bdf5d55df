// cifake export: a checkpoint (default: the shipped weights) as ONNX or safetensors; the PyTorch
// reference module whose tensor names the safetensors file uses.
import { Command, Option } from 'commander';

import { EXPORT_FORMATS, exportModel, PYTORCH_REFERENCE } from '../../src/export';

interface ExportFlags {
  model?: string;
  format?: string;
  out?: string;
  printPytorch?: boolean;
  device?: string;
  json?: boolean;
}

export function exportCommand(): Command {
  const cmd: Command = new Command('export')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .description('write a model as ONNX (opset 13; onnxruntime, the browser) or safetensors (PyTorch)')
    .option('-m, --model <runOrCheckpoint>', "run directory, checkpoint, or 'pretrained' (default: the weights the package ships)")
    .addOption(new Option('-f, --format <format>', 'output format').choices([...EXPORT_FORMATS]))
    .option('-o, --out <file>', 'output file (default: the checkpoint name with .onnx / .safetensors, here)')
    .option('--print-pytorch', 'print the PyTorch reference module (its state_dict names are the safetensors names) and exit')
    .option('--device <d>', 'device to load the checkpoint on (default cpu)')
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      '\nONNX contract: input "input" float32 [N,3,32,32] = RGB pixel / 255; output "logit" [N] (stored temperature applied),\n"p_real" = sigmoid(logit) = P(REAL).\n\nExamples:\n  cifake export --format onnx --out cifake.onnx\n  cifake export --model runs/res-plus --format safetensors\n  cifake export --print-pytorch > cifake_reference.py',
    )
    .action(async (o: ExportFlags) => {
      if (o.printPytorch) {
        process.stdout.write(PYTORCH_REFERENCE);
        return;
      }
      if (!o.format) cmd.error(`error: required option '-f, --format <format>' not specified (${EXPORT_FORMATS.join(' | ')})`, { exitCode: 2, code: 'commander.missingMandatoryOptionValue' });
      const r = await exportModel({ model: o.model, format: o.format!, out: o.out, device: o.device });
      if (o.json) {
        process.stdout.write(`${JSON.stringify(r)}\n`);
        return;
      }
      const t = r.temperature === 1 ? '' : `, temperature ${r.temperature} divided out of the logit`;
      process.stdout.write(`${r.file}: ${r.format}, ${r.tensors} tensors, ${r.bytes} bytes, from ${r.checkpoint} (${r.spec.family}${t}; threshold ${r.threshold})\n`);
    });
  return cmd;
}
