// Where a data-parallel rank finds its job: torchrun / Slurm-style environment variables
// (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE), overridden by flags.
import { z } from 'zod';

export interface DistOptions {
  rank: number;
  worldSize: number;
  /** Rank on this host: picks the GPU (cuda:LOCAL_RANK) and splits the CPU threads. */
  localRank: number;
  localWorldSize: number;
  /** Host of rank 0, which serves the rendezvous store (c10d TCPStore). */
  masterAddr: string;
  masterPort: number;
  /** Rendezvous and collectives fail after this long without progress from every rank. */
  timeoutMs: number;
  /** Network interface Gloo uses (GLOO_SOCKET_IFNAME); default: the one that reaches MASTER_ADDR. */
  ifname?: string;
}

export const DEFAULT_DIST_TIMEOUT_S = 300;

const int = (name: string, min: number) =>
  z.coerce
    .number({ error: `${name}: must be an integer` })
    .int(`${name}: must be an integer`)
    .min(min, `${name}: must be >= ${min}`);

const schema = z
  .object({
    rank: int('RANK / --rank', 0),
    worldSize: int('WORLD_SIZE / --world-size', 1),
    localRank: int('LOCAL_RANK / --local-rank', 0),
    localWorldSize: int('LOCAL_WORLD_SIZE', 1),
    masterAddr: z.string().min(1, 'MASTER_ADDR / --master-addr: must not be empty'),
    masterPort: int('MASTER_PORT / --master-port', 1).max(65535, 'MASTER_PORT / --master-port: must be <= 65535'),
    timeoutMs: z.number().positive('--dist-timeout: must be > 0'),
    ifname: z.string().optional(),
  })
  .refine((o) => o.rank < o.worldSize, { message: 'RANK / --rank: must be < WORLD_SIZE', path: ['rank'] });

export interface DistFlags {
  rank?: string | number;
  worldSize?: string | number;
  localRank?: string | number;
  masterAddr?: string;
  masterPort?: string | number;
  distTimeout?: string | number;
}

/**
 * The distributed options of this process, from flags over environment variables; null when this
 * is not a multi-process job (no WORLD_SIZE, or WORLD_SIZE 1). Bad values throw naming the variable.
 */
export function distOptionsFrom(flags: DistFlags = {}, env: NodeJS.ProcessEnv = process.env): DistOptions | null {
  const worldSize = flags.worldSize ?? env.WORLD_SIZE;
  if (worldSize === undefined || String(worldSize) === '1') return null;
  const timeoutS = Number(flags.distTimeout ?? env.CIFAKE_DIST_TIMEOUT ?? DEFAULT_DIST_TIMEOUT_S);
  const rank = flags.rank ?? env.RANK;
  if (rank === undefined) throw new Error('RANK / --rank: required when WORLD_SIZE > 1');
  const localRank = flags.localRank ?? env.LOCAL_RANK ?? rank;
  const parsed = schema.safeParse({
    rank,
    worldSize,
    localRank,
    localWorldSize: env.LOCAL_WORLD_SIZE ?? (env.LOCAL_RANK === undefined && flags.localRank === undefined ? 1 : worldSize),
    masterAddr: flags.masterAddr ?? env.MASTER_ADDR ?? '127.0.0.1',
    masterPort: flags.masterPort ?? env.MASTER_PORT ?? 29500,
    timeoutMs: Number.isFinite(timeoutS) ? timeoutS * 1000 : NaN,
    ifname: env.GLOO_SOCKET_IFNAME || undefined,
  });
  if (!parsed.success) throw new Error(parsed.error.issues.map((i) => i.message).join('; '));
  return parsed.data;
}
