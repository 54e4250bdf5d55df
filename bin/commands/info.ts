// cifake info: package, libtorch, threads, BLAS and CUDA devices in use.
import { Command } from 'commander';

import { packageVersion, readPretrainedManifest, runtimeInfo } from '../../src';
import { print } from '../cli-helpers';

type Pretrained = { file: string; preset: string; sha256: string; testAccuracy: number | null } | null;

function pretrainedInfo(): Pretrained {
  const m = readPretrainedManifest();
  return m ? { file: `models/${m.file}`, preset: m.preset, sha256: m.sha256, testAccuracy: typeof m.test.accuracy === 'number' ? m.test.accuracy : null } : null;
}

function infoText(info: ReturnType<typeof runtimeInfo>, blas: string, mkldnn: string, pretrained: Pretrained): string {
  const gpus = info.cuda.devices.map((d) => `  cuda:${d.index} ${d.name} (${(d.memory / 2 ** 30).toFixed(1)} GiB, sm ${d.capability})`);
  const cuda = info.cuda.available ? `${info.cuda.devices.length} device(s)` : info.cuda.built ? 'built, but no device visible' : 'not in this libtorch build';
  return [
    `cifake-torch ${packageVersion()}`,
    `libtorch ${info.torchVersion} (${info.torchSource})`,
    `cpu: ${info.threads} intra-op threads of ${info.availableCpus} available CPUs; BLAS ${blas}; oneDNN ${mkldnn}`,
    `cuda: ${cuda}`,
    ...gpus,
    `data-parallel (c10d/Gloo): ${info.distributed ? 'yes' : 'no (built without c10d/gloo headers)'}`,
    pretrained
      ? `pretrained detector: ${pretrained.file} (${pretrained.preset}${pretrained.testAccuracy !== null ? `, ${(pretrained.testAccuracy * 100).toFixed(2)}% on the CIFAKE test half` : ''}, sha256 ${pretrained.sha256.slice(0, 12)}…)`
      : 'pretrained detector: none in this build (pass --model)',
  ].join('\n');
}

export function infoCommand(): Command {
  return new Command('info')
    .description('package, libtorch, devices and BLAS in use')
    .option('--json', 'machine-readable output')
    .action((o: { json?: boolean }) => {
      const info = runtimeInfo();
      const blasInfo = /BLAS_INFO=([^,\s]+)/.exec(info.config)?.[1] ?? 'unknown';
      const blas = info.blasLibraries.length ? `${blasInfo} (${info.blasLibraries.join(', ')})` : blasInfo;
      const mkldnn = /USE_MKLDNN=(\w+)/.exec(info.config)?.[1] ?? 'unknown';
      const out = {
        package: packageVersion(),
        libtorch: info.torchVersion,
        libtorchFrom: info.torchSource,
        cpu: { threads: info.threads, available: info.availableCpus, ompNumThreads: process.env.OMP_NUM_THREADS },
        blas,
        mkldnn,
        cuda: info.cuda,
        distributed: info.distributed,
        pretrained: pretrainedInfo(),
      };
      print(!!o.json, out, infoText(info, blas, mkldnn, out.pretrained));
    });
}
