// A rank's view of its data-parallel job: the c10d process group plus the few collectives the fit
// loop needs (share a decision, gather per-rank logits, split a dataset, wait for the others).
import { loadNative, type NativeDistGroup } from '../native';
import type { DistOptions } from './options';

export class DistContext {
  private constructor(
    readonly options: DistOptions,
    readonly group: NativeDistGroup,
  ) {}

  /** Joins the job: resolves once every rank has connected, rejects (naming who is missing) on timeout. */
  static async connect(options: DistOptions): Promise<DistContext> {
    const native = loadNative();
    if (!native.info().distributed)
      throw new Error(
        'distributed: this build of the addon has no c10d/Gloo support (on Debian/Ubuntu: apt-get install libgloo-dev, then npm run build:native)',
      );
    const group = new native.DistGroup({
      rank: options.rank,
      worldSize: options.worldSize,
      masterAddr: options.masterAddr,
      masterPort: options.masterPort,
      timeoutMs: Math.round(options.timeoutMs),
      ifname: options.ifname,
    });
    try {
      await group.connect();
    } catch (e) {
      group.close();
      throw e;
    }
    return new DistContext(options, group);
  }

  get rank(): number {
    return this.options.rank;
  }

  get size(): number {
    return this.options.worldSize;
  }

  /** Rank 0 alone writes the run directory, checkpoints and reports. */
  get isLeader(): boolean {
    return this.options.rank === 0;
  }

  /** Rank 0's value on every rank (JSON-serialisable values). */
  async shareFromLeader<T>(value: T | undefined): Promise<T> {
    const bytes = this.isLeader ? new TextEncoder().encode(JSON.stringify(value ?? null)) : null;
    const out = await this.group.broadcastBytes(bytes, 0);
    return JSON.parse(new TextDecoder().decode(out)) as T;
  }

  /** Rank 0's bytes on every rank. */
  shareBytesFromLeader(bytes: Uint8Array | null): Promise<Uint8Array> {
    return this.group.broadcastBytes(this.isLeader ? (bytes ?? new Uint8Array(0)) : null, 0);
  }

  /** This rank's contiguous part [start, end) of `n` items; the parts in rank order cover 0..n. */
  shard(n: number): { start: number; end: number } {
    return { start: Math.floor((n * this.rank) / this.size), end: Math.floor((n * (this.rank + 1)) / this.size) };
  }

  /** Every rank's values, concatenated in rank order. */
  gather(values: Float32Array): Promise<Float32Array> {
    return this.group.allGather(values);
  }

  async sum(values: number[]): Promise<number[]> {
    return Array.from(await this.group.allReduce(Float64Array.from(values), 'sum'));
  }

  barrier(): Promise<void> {
    return this.group.barrier();
  }

  close(): void {
    this.group.close();
  }
}
