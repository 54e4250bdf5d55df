// What the ranks of a training job agree on, behind one interface: the fit loop calls the same
// methods alone (SingleProcess: each is the trivial local step) or as one rank of a c10d job
// (C10dRanks: rank 0 decides, data is sharded, logits gathered, checkpoints sent through the group).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { resolveThreads } from '../config';
import type { ImageSet } from '../data';
import type { CifakeModel, EpochResult } from '../model';
import { loadNative } from '../native';
import { DistContext } from './group';
import type { DistOptions } from './options';

export interface RankSync {
  readonly size: number;
  /** Rank 0 (or the only process): it alone writes the run directory. */
  readonly isLeader: boolean;
  /** Rank 0 computes `value()`; every rank gets its result (JSON-serialisable). */
  fromLeader<T>(value: () => T): Promise<T>;
  /** Runs `work` on rank 0 first (e.g. decoding into the cache), then on the others. */
  leaderFirst<T>(work: () => Promise<T>): Promise<T>;
  /** The device and CPU threads of this rank's model. */
  device(device: string): string;
  threads(threads: number | null): number;
  /** Joins the model to the group; a fresh run then starts every rank from rank 0's weights. */
  attach(model: CifakeModel, fresh: boolean): Promise<void>;
  /** Hands `set` (all of it, or this rank's shard) to the device under `key`. */
  setData(model: CifakeModel, key: string, set: ImageSet): Promise<void>;
  /** Every rank's logits in rank order (the whole split). */
  gather(logits: Float32Array): Promise<Float32Array>;
  /** Rank 0's file as a local path on this rank (null when rank 0 has none). */
  leaderFile(file: string): Promise<string | null>;
  /** Fields an epoch's log gains (data-parallel: seconds in collectives). */
  epochExtras(r: EpochResult): { commSeconds?: number };
  /** A line for the run's log, or null. */
  describe(): string | null;
  close(): void;
}

/** One process: nothing to agree on. */
export class SingleProcess implements RankSync {
  readonly size = 1;
  readonly isLeader = true;
  async fromLeader<T>(value: () => T): Promise<T> {
    return value();
  }
  leaderFirst<T>(work: () => Promise<T>): Promise<T> {
    return work();
  }
  device(device: string): string {
    return device;
  }
  threads(threads: number | null): number {
    return resolveThreads(threads);
  }
  async attach(): Promise<void> {}
  setData(model: CifakeModel, key: string, set: ImageSet): Promise<void> {
    return model.setData(key, set.images, set.labels);
  }
  async gather(logits: Float32Array): Promise<Float32Array> {
    return logits;
  }
  async leaderFile(file: string): Promise<string | null> {
    return fs.existsSync(file) ? file : null;
  }
  epochExtras(): { commSeconds?: number } {
    return {};
  }
  describe(): string | null {
    return null;
  }
  close(): void {}
}

/** One rank of a c10d (Gloo) job. */
export class C10dRanks implements RankSync {
  private tmpDir: string | null = null;

  constructor(
    private readonly ctx: DistContext,
    private readonly dist: DistOptions,
  ) {}

  get size(): number {
    return this.ctx.size;
  }
  get isLeader(): boolean {
    return this.ctx.isLeader;
  }
  fromLeader<T>(value: () => T): Promise<T> {
    return this.ctx.shareFromLeader(this.isLeader ? value() : undefined);
  }
  async leaderFirst<T>(work: () => Promise<T>): Promise<T> {
    if (!this.isLeader) await this.ctx.barrier();
    const r = await work();
    if (this.isLeader) await this.ctx.barrier();
    return r;
  }
  /** cuda/auto picks this rank's GPU (cuda:LOCAL_RANK). */
  device(device: string): string {
    if (!(device === 'cuda' || device === 'auto')) return device;
    const cuda = loadNative().info().cuda;
    if (!cuda.available) return device === 'auto' ? 'cpu' : device;
    return `cuda:${this.dist.localRank % Math.max(1, cuda.devices.length)}`;
  }
  /** Without --threads the CPUs are split between the ranks on this host. */
  threads(threads: number | null): number {
    if (threads !== null) return resolveThreads(threads);
    return Math.max(1, Math.floor(resolveThreads(null) / this.dist.localWorldSize));
  }
  async attach(model: CifakeModel, fresh: boolean): Promise<void> {
    await model.attachGroup(this.ctx.group);
    if (fresh) await model.broadcastState(0); // like DDP: every rank starts from rank 0's initial weights
  }
  setData(model: CifakeModel, key: string, set: ImageSet): Promise<void> {
    if (set.count < this.size) throw new Error(`the ${key} split has ${set.count} images, fewer than the ${this.size} ranks`);
    const { start, end } = this.ctx.shard(set.count);
    return model.setData(key, set.images.subarray(start * 3072, end * 3072), set.labels.subarray(start, end));
  }
  gather(logits: Float32Array): Promise<Float32Array> {
    return this.ctx.gather(logits);
  }
  /** Rank 0's bytes sent through the group: no shared disk needed. */
  async leaderFile(file: string): Promise<string | null> {
    const bytes = await this.ctx.shareBytesFromLeader(this.isLeader && fs.existsSync(file) ? fs.readFileSync(file) : null);
    if (bytes.length === 0) return null;
    if (this.isLeader) return file;
    this.tmpDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-rank-'));
    const local = path.join(this.tmpDir, path.basename(file));
    fs.writeFileSync(local, bytes);
    return local;
  }
  epochExtras(r: EpochResult): { commSeconds?: number } {
    return { commSeconds: r.commSeconds ?? 0 };
  }
  describe(): string | null {
    return `data-parallel: rank ${this.ctx.rank} of ${this.ctx.size}, rendezvous ${this.ctx.options.masterAddr}:${this.ctx.options.masterPort}`;
  }
  close(): void {
    this.ctx.close();
    if (this.tmpDir) fs.rmSync(this.tmpDir, { recursive: true, force: true });
  }
}

/** The ranks of `dist` (joined: rendezvous done), or a single process. */
export async function connectRanks(dist: DistOptions | null | undefined): Promise<RankSync> {
  if (!dist || dist.worldSize <= 1) return new SingleProcess();
  return new C10dRanks(await DistContext.connect(dist), dist);
}
