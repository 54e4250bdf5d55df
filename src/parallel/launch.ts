// `cifake train --nproc N`: starts N ranks of the same command on this host (like torchrun), each
// with the torchrun environment (so each takes its share of the CPU threads), and supervises them: the job
// fails as soon as one rank fails, and ranks left behind are stopped after a grace period.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import readline from 'node:readline';

export interface LaunchOptions {
  nproc: number;
  /** node script and arguments of one rank (without --nproc). */
  script: string;
  args: string[];
  /**
   * Intra-op threads per rank, passed as --threads. Default: none passed, and each rank takes its
   * share of the CPUs from LOCAL_WORLD_SIZE (see train()).
   */
  threadsPerRank?: number;
  /** Extra arguments for ranks other than 0 (e.g. --quiet). */
  followerArgs?: string[];
  /** After a rank fails, how long the others get to notice and exit on their own. */
  graceMs?: number;
  masterPort?: number;
  env?: NodeJS.ProcessEnv;
  /** Lines the ranks other than 0 print on stderr, prefixed with their rank (default: to our stderr). */
  onFollowerLine?: (rank: number, line: string) => void;
}

export interface LaunchResult {
  exitCode: number;
  /** Exit code (or signal) of each rank. */
  ranks: { rank: number; code: number | null; signal: NodeJS.Signals | null }[];
  failedRank: number | null;
}

/** A TCP port that was free a moment ago (the rendezvous store binds it next). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function launchLocal(o: LaunchOptions): Promise<LaunchResult> {
  if (!Number.isInteger(o.nproc) || o.nproc < 1) throw new Error(`--nproc: must be a positive integer, got ${o.nproc}`);
  const port = o.masterPort ?? (await freePort());
  const children: ChildProcess[] = [];
  const results: LaunchResult['ranks'] = [];
  let failedRank: number | null = null;
  let killTimer: NodeJS.Timeout | null = null;
  const stopOthers = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    setTimeout(() => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }, 5000).unref();
  };
  const onLine = o.onFollowerLine ?? ((rank, line) => process.stderr.write(`[rank ${rank}] ${line}\n`));

  const exits = Array.from({ length: o.nproc }, (_, rank) => {
    const env = {
      ...process.env,
      ...o.env,
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: String(port),
      WORLD_SIZE: String(o.nproc),
      RANK: String(rank),
      LOCAL_RANK: String(rank),
      LOCAL_WORLD_SIZE: String(o.nproc),
    };
    const threads = o.threadsPerRank === undefined ? [] : ['--threads', String(o.threadsPerRank)];
    const args = [o.script, ...o.args, ...threads, ...(rank === 0 ? [] : (o.followerArgs ?? []))];
    const child = spawn(process.execPath, [...process.execArgv, ...args], { env, stdio: rank === 0 ? 'inherit' : ['ignore', 'ignore', 'pipe'] });
    children.push(child);
    if (child.stderr) readline.createInterface({ input: child.stderr }).on('line', (line) => onLine(rank, line));
    return new Promise<void>((resolve) => {
      child.on('exit', (code, signal) => {
        results.push({ rank, code, signal });
        if ((code !== 0 || signal) && failedRank === null) {
          failedRank = rank;
          killTimer = setTimeout(stopOthers, o.graceMs ?? 30000);
        }
        resolve();
      });
      child.on('error', (e) => {
        results.push({ rank, code: 1, signal: null });
        onLine(rank, `cannot start: ${e.message}`);
        if (failedRank === null) failedRank = rank;
        resolve();
      });
    });
  });
  await Promise.all(exits);
  if (killTimer) clearTimeout(killTimer);
  results.sort((a, b) => a.rank - b.rank);
  const failed = failedRank === null ? null : results.find((r) => r.rank === failedRank);
  const exitCode = failed ? (failed.code ?? (failed.signal === 'SIGINT' ? 130 : 1)) || 1 : 0;
  return { exitCode, ranks: results, failedRank };
}
