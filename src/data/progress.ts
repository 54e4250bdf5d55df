// A progress callback that draws a cli-progress bar on stderr.
import * as cliProgress from 'cli-progress';
import { ProgressCallback, ProgressInfo } from './types';

export interface ProgressBar extends ProgressCallback {
  /** Stops the bar (leaves the last state on screen). Safe to call more than once. */
  stop(): void;
}

/**
 * Returns an onProgress callback that draws `label [=====-----] done/total | 12345 img/s | ETA 3s`
 * on stderr. Call stop() when the load is done (or failed).
 */
export function progressBar(label: string): ProgressBar {
  let bar: cliProgress.SingleBar | null = null;
  let stopped = false;
  const update = (p: ProgressInfo): void => {
    if (stopped) return;
    const rate = Math.round(p.imagesPerSec);
    if (bar === null) {
      bar = new cliProgress.SingleBar(
        {
          stream: process.stderr,
          format: `${label} [{bar}] {value}/{total} | {rate} img/s | ETA {eta_formatted}`,
          barCompleteChar: '=',
          barIncompleteChar: '-',
          hideCursor: false,
          clearOnComplete: false,
          etaBuffer: 20,
        },
        cliProgress.Presets.legacy,
      );
      bar.start(p.total, p.done, { rate });
    } else {
      if (bar.getTotal() !== p.total) bar.setTotal(p.total);
      bar.update(p.done, { rate });
    }
  };
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    if (bar !== null) bar.stop();
  };
  return Object.assign(update, { stop });
}
