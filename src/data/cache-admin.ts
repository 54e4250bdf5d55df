// Inspection and clean-up of the decoded-data cache folder (`cifake data info`, `cifake data clear`).
import * as fs from 'node:fs';
import * as path from 'node:path';

import { CACHE_FORMAT, CACHE_VERSION, isObject, packageVersion, readJson, resolveCacheDir, type CacheHeader, type CacheOptions } from './cache';
import { DataError, errorMessage } from './errors';
import { ClassName } from './types';
import { zipFingerprint } from './zip';


export interface CacheEntryInfo {
  /** Base name (without .bin/.json). */
  name: string;
  jsonPath: string;
  binPath: string;
  /** Bytes of both files. */
  bytes: number;
  /** ok; stale: another cache or package version (will be rebuilt); incomplete: data file missing or of the wrong size; invalid: unreadable header. */
  status: 'ok' | 'stale' | 'incomplete' | 'invalid';
  note?: string;
  split?: string;
  source?: string;
  sourceKind?: 'zip' | 'folder';
  /** For zip sources: whether the zip still has the size and mtime recorded (folders are not checked here). */
  sourceUnchanged?: boolean;
  count?: number;
  counts?: Record<ClassName, number>;
  options?: CacheOptions;
  created?: string;
  packageVersion?: string;
}

/** Lists the caches in a folder (default: the default cache folder), for `cifake data info`. */
export async function cacheInfo(cacheDir?: string): Promise<{ dir: string; entries: CacheEntryInfo[]; bytes: number }> {
  const dir = resolveCacheDir(cacheDir) as string;
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { dir, entries: [], bytes: 0 };
    throw new DataError(`cannot list cache folder ${dir}: ${errorMessage(e)}`, dir);
  }
  const entries: CacheEntryInfo[] = [];
  for (const n of names.filter((x) => x.endsWith('.json')).sort()) {
    const base = n.slice(0, -'.json'.length);
    const jsonPath = path.join(dir, n);
    const binPath = path.join(dir, `${base}.bin`);
    const jsonSize = (await fs.promises.stat(jsonPath).catch(() => null))?.size ?? 0;
    const binSize = (await fs.promises.stat(binPath).catch(() => null))?.size;
    const info: CacheEntryInfo = { name: base, jsonPath, binPath, bytes: jsonSize + (binSize ?? 0), status: 'invalid' };
    try {
      const h = await readJson(jsonPath);
      if (!isObject(h) || h.format !== CACHE_FORMAT) continue; // not ours
      const header = h as unknown as CacheHeader;
      Object.assign(info, {
        split: header.split,
        source: header.source?.path,
        sourceKind: header.source?.kind,
        count: header.count,
        counts: header.counts,
        options: header.options,
        created: header.created,
        packageVersion: header.packageVersion,
      });
      if (header.version !== CACHE_VERSION || header.packageVersion !== packageVersion()) {
        info.status = 'stale';
        info.note = `format ${header.version}, package ${header.packageVersion}`;
      } else if (binSize !== header.fileBytes) {
        info.status = 'incomplete';
        info.note = binSize === undefined ? 'data file missing' : `data file is ${binSize} bytes, expected ${header.fileBytes}`;
      } else {
        info.status = 'ok';
      }
      if (header.source?.kind === 'zip' && typeof header.source.path === 'string') {
        const st = await fs.promises.stat(header.source.path).catch(() => null);
        info.sourceUnchanged = st !== null && zipFingerprint(st) === header.source.fingerprint;
      }
    } catch (e) {
      info.note = `unreadable header: ${errorMessage(e)}`;
    }
    entries.push(info);
  }
  return { dir, entries, bytes: entries.reduce((s, e) => s + e.bytes, 0) };
}

/** Deletes the caches (and leftover temporary files) in a folder; returns the number of files removed. */
export async function clearCache(cacheDir?: string): Promise<number> {
  const { dir, entries } = await cacheInfo(cacheDir);
  let removed = 0;
  const rm = async (p: string): Promise<void> => {
    try {
      await fs.promises.unlink(p);
      removed++;
    } catch {
      // already gone
    }
  };
  for (const e of entries) {
    await rm(e.binPath);
    await rm(e.jsonPath);
  }
  const names = await fs.promises.readdir(dir).catch(() => [] as string[]);
  for (const n of names) if (/\.(bin|json)\.\d+-[0-9a-f]{8}\.tmp$/.test(n)) await rm(path.join(dir, n));
  return removed;
}
