/**
 * Early stopping on a validation metric, with the semantics of Keras' `EarlyStopping`
 * callback (and the common PyTorch recipe):
 *
 *  - `mode` is derived from the monitor: `min` for `val_loss`, `max` for `val_acc`.
 *  - a value is an improvement iff it is strictly better than the best so far by more than
 *    `minDelta`: `value < best - minDelta` (min) / `value > best + minDelta` (max).
 *    The first finite value is always an improvement.
 *    Non-finite values (NaN, ±Infinity: a diverged run) never count as an improvement;
 *    they only increase `wait`.
 *  - `wait` counts epochs since the last improvement; it resets to 0 on improvement.
 *  - `stop` is true when `wait >= patience`.
 *  - `patience` 0, null or undefined disables stopping (`stop` is never true) while the
 *    best value/epoch is still tracked. (This differs from Keras, where patience 0 means
 *    "stop at the first non-improvement"; use patience 1 for that.)
 *
 * The class holds no weights: the fit loop snapshots weights natively whenever `update`
 * reports `improved`, and restores them at the end when `restoreBest` is true.
 * Epoch numbers are whatever the caller passes (1-based in the CLI's logs); they are only
 * recorded, never interpreted.
 *
 * State is serialisable (`toJSON` / `EarlyStopping.fromJSON`) so a resumed run continues
 * identically.
 */

export type EarlyStoppingMonitor = 'val_loss' | 'val_acc';
export type EarlyStoppingMode = 'min' | 'max';

export interface EarlyStoppingOptions {
  /** metric to watch (default 'val_loss') */
  monitor?: EarlyStoppingMonitor;
  /** derived from `monitor` when omitted; may be given explicitly but must match it */
  mode?: EarlyStoppingMode;
  /** epochs without improvement before stopping; 0/null/undefined = never stop */
  patience?: number | null;
  /** minimum strict improvement (>= 0, default 0) */
  minDelta?: number;
  /** whether the fit loop should restore the best weights at the end (default true); informational here */
  restoreBest?: boolean;
}

export interface EarlyStoppingUpdate {
  /** this value is the new best (the fit loop should snapshot weights) */
  improved: boolean;
  /** training should stop after this epoch */
  stop: boolean;
  /** epoch of the best value so far (null until a finite value was seen) */
  bestEpoch: number | null;
  /** best value so far (null until a finite value was seen) */
  bestValue: number | null;
  /** epochs since the last improvement */
  wait: number;
}

/** JSON form of the state (version 1). */
export interface EarlyStoppingState {
  version: 1;
  monitor: EarlyStoppingMonitor;
  mode: EarlyStoppingMode;
  patience: number | null;
  minDelta: number;
  restoreBest: boolean;
  bestValue: number | null;
  bestEpoch: number | null;
  wait: number;
  /** epoch at which `stop` first became true, or null */
  stoppedEpoch: number | null;
  /** last epoch passed to update, or null */
  lastEpoch: number | null;
}

const MONITORS: readonly EarlyStoppingMonitor[] = ['val_loss', 'val_acc'];

export function modeForMonitor(monitor: EarlyStoppingMonitor): EarlyStoppingMode {
  return monitor === 'val_acc' ? 'max' : 'min';
}

export class EarlyStopping {
  readonly monitor: EarlyStoppingMonitor;
  readonly mode: EarlyStoppingMode;
  /** normalised: null when disabled (0/null/undefined) */
  readonly patience: number | null;
  readonly minDelta: number;
  readonly restoreBest: boolean;

  private best: number; // ±Infinity until the first finite value
  private _bestEpoch: number | null = null;
  private _wait = 0;
  private _stoppedEpoch: number | null = null;
  private _lastEpoch: number | null = null;

  constructor(options: EarlyStoppingOptions = {}) {
    const monitor = options.monitor ?? 'val_loss';
    if (!MONITORS.includes(monitor)) {
      throw new RangeError(`EarlyStopping: monitor must be one of ${MONITORS.join(', ')}, got ${JSON.stringify(monitor)}`);
    }
    const derived = modeForMonitor(monitor);
    if (options.mode !== undefined && options.mode !== derived) {
      throw new RangeError(`EarlyStopping: mode for ${monitor} must be '${derived}', got ${JSON.stringify(options.mode)}`);
    }
    const patience = options.patience ?? null;
    if (patience !== null && !(Number.isInteger(patience) && patience >= 0)) {
      throw new RangeError(`EarlyStopping: patience must be an integer >= 0 or null, got ${String(patience)}`);
    }
    const minDelta = options.minDelta ?? 0;
    if (!(Number.isFinite(minDelta) && minDelta >= 0)) {
      throw new RangeError(`EarlyStopping: minDelta must be a finite number >= 0, got ${String(minDelta)}`);
    }
    this.monitor = monitor;
    this.mode = derived;
    this.patience = patience === 0 ? null : patience;
    this.minDelta = minDelta;
    this.restoreBest = options.restoreBest ?? true;
    this.best = derived === 'min' ? Infinity : -Infinity;
  }

  /** false when patience is 0/null (never stops) */
  get enabled(): boolean {
    return this.patience !== null;
  }

  get bestValue(): number | null {
    return Number.isFinite(this.best) ? this.best : null;
  }

  get bestEpoch(): number | null {
    return this._bestEpoch;
  }

  get wait(): number {
    return this._wait;
  }

  /** epoch at which stopping was first signalled, or null */
  get stoppedEpoch(): number | null {
    return this._stoppedEpoch;
  }

  /** whether stopping has been signalled */
  get stopped(): boolean {
    return this._stoppedEpoch !== null;
  }

  /** is `value` strictly better than the current best by more than minDelta? (non-finite → false) */
  isImprovement(value: number): boolean {
    if (!Number.isFinite(value)) return false;
    return this.mode === 'min' ? value < this.best - this.minDelta : value > this.best + this.minDelta;
  }

  /** Record the monitored value of `epoch`; returns what the fit loop should do. */
  update(epoch: number, value: number): EarlyStoppingUpdate {
    if (typeof epoch !== 'number' || !Number.isFinite(epoch)) {
      throw new RangeError(`EarlyStopping.update: epoch must be a finite number, got ${String(epoch)}`);
    }
    if (typeof value !== 'number') {
      throw new TypeError(`EarlyStopping.update: value must be a number, got ${typeof value}`);
    }
    this._lastEpoch = epoch;
    const improved = this.isImprovement(value);
    if (improved) {
      this.best = value;
      this._bestEpoch = epoch;
      this._wait = 0;
    } else {
      this._wait += 1;
    }
    const stop = this.patience !== null && this._wait >= this.patience;
    if (stop && this._stoppedEpoch === null) this._stoppedEpoch = epoch;
    return { improved, stop, bestEpoch: this._bestEpoch, bestValue: this.bestValue, wait: this._wait };
  }

  toJSON(): EarlyStoppingState {
    return {
      version: 1,
      monitor: this.monitor,
      mode: this.mode,
      patience: this.patience,
      minDelta: this.minDelta,
      restoreBest: this.restoreBest,
      bestValue: this.bestValue,
      bestEpoch: this._bestEpoch,
      wait: this._wait,
      stoppedEpoch: this._stoppedEpoch,
      lastEpoch: this._lastEpoch,
    };
  }

  /** Rebuild from `toJSON()` output (also accepts it after a JSON round trip). */
  static fromJSON(state: EarlyStoppingState | string): EarlyStopping {
    const s = (typeof state === 'string' ? JSON.parse(state) : state) as Partial<EarlyStoppingState> | null;
    if (s === null || typeof s !== 'object') throw new TypeError('EarlyStopping.fromJSON: expected an object');
    if (s.version !== 1) throw new RangeError(`EarlyStopping.fromJSON: unsupported state version ${String(s.version)}`);
    const es = new EarlyStopping({
      monitor: s.monitor,
      mode: s.mode,
      patience: s.patience,
      minDelta: s.minDelta,
      restoreBest: s.restoreBest,
    });
    const numOrNull = (v: unknown, name: string): number | null => {
      if (v === null || v === undefined) return null;
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new RangeError(`EarlyStopping.fromJSON: ${name} must be a finite number or null, got ${String(v)}`);
      }
      return v;
    };
    const bestValue = numOrNull(s.bestValue, 'bestValue');
    if (bestValue !== null) es.best = bestValue;
    es._bestEpoch = numOrNull(s.bestEpoch, 'bestEpoch');
    const wait = s.wait ?? 0;
    if (!(Number.isInteger(wait) && wait >= 0)) {
      throw new RangeError(`EarlyStopping.fromJSON: wait must be an integer >= 0, got ${String(wait)}`);
    }
    es._wait = wait;
    es._stoppedEpoch = numOrNull(s.stoppedEpoch, 'stoppedEpoch');
    es._lastEpoch = numOrNull(s.lastEpoch, 'lastEpoch');
    return es;
  }
}
