// Which dataset a run reads: the one training uses (config.data, else the embedded demo set) and
// the one a finished run is re-read from (for reports: the recorded source, else config.data).
import fs from 'node:fs';
import path from 'node:path';

import type { TrainConfig } from '../config';
import { ensureSynth } from '../data/synth';
import type { RunDataSummary } from './run-dir';

/** The data path for training: the config's, or the embedded demo set (generated once). */
export async function resolveData(config: Pick<TrainConfig, 'data'>, log?: (m: string) => void): Promise<string> {
  if (config.data) return config.data;
  log?.('no --data given: using the embedded synthetic demo set (a pipeline demo, not a detector benchmark)');
  const dir = await ensureSynth();
  log?.(`demo set: ${dir}`);
  return dir;
}

/**
 * The dataset a finished run used: `explicit`, else data.json's recorded source when it still
 * exists, else config.data (as given, or relative to the run's grandparent), else the demo set.
 */
export async function resolveRunData(runDir: string, config: Pick<TrainConfig, 'data'>, dataSummary: RunDataSummary | null, explicit?: string): Promise<string> {
  if (explicit) return explicit;
  const recorded = dataSummary?.train?.source;
  if (recorded && fs.existsSync(recorded)) return recorded;
  if (config.data) {
    for (const candidate of [config.data, path.resolve(runDir, '..', '..', config.data)]) {
      if (fs.existsSync(candidate)) return candidate;
    }
    throw new Error(`the run's data ${config.data} was not found (pass the data path explicitly)`);
  }
  return resolveData(config);
}
