// Folder data source: a plain directory tree (symlinks to files and folders are followed).
// A symlink that cannot be followed (dangling, or in a loop) is listed as a file that cannot be
// read, with the reason, so that it is skipped and named like any unreadable file (and fails a
// strict load) instead of vanishing.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from './errors';
import { compareStrings, DataSource, DirListing, ReadResult, SourceFile } from './source';

interface FolderFile extends SourceFile {
  mtimeMs: number;
  /** Why the file cannot be read (a broken symlink), found while listing. */
  error?: string;
}

const MAX_DEPTH = 32;
/**
 * Files stat'ed / read between two yields to the event loop. Synchronous calls in slices are 2-4x
 * faster than fs.promises for many small files (one syscall each instead of several thread-pool
 * round trips), and the slices keep timers and progress callbacks running.
 */
const SLICE = 256;

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class FolderSource implements DataSource {
  readonly kind = 'folder' as const;

  constructor(readonly path: string) {}

  private abs(rel: string): string {
    return rel === '' ? this.path : path.join(this.path, ...rel.split('/'));
  }

  async list(dir: string): Promise<DirListing> {
    const dirs: string[] = [];
    const files: string[] = [];
    let entries: fs.Dirent[];
    try {
      entries = await fs.promises.readdir(this.abs(dir), { withFileTypes: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return { dirs, files };
      throw new DataError(`cannot list ${this.abs(dir)}: ${(e as Error).message}`, this.abs(dir));
    }
    for (const d of entries) {
      let isDir = d.isDirectory();
      let isFile = d.isFile();
      if (d.isSymbolicLink()) {
        const st = await fs.promises.stat(path.join(this.abs(dir), d.name)).catch(() => null);
        isDir = st?.isDirectory() ?? false;
        // A link that cannot be followed is a file that cannot be read (walk says why).
        isFile = st === null || st.isFile();
      }
      if (isDir) dirs.push(d.name);
      else if (isFile) files.push(d.name);
    }
    return { dirs: dirs.sort(compareStrings), files: files.sort(compareStrings) };
  }

  async walk(dir: string): Promise<SourceFile[]> {
    const names: string[] = [];
    /** Folder symlinks that lead back to a folder being walked: listed as unreadable files. */
    const loops = new Map<string, string>();
    const visit = async (d: string, depth: number, chain: ReadonlySet<string>): Promise<void> => {
      if (depth > MAX_DEPTH) throw new DataError(`folders nested more than ${MAX_DEPTH} deep at ${this.abs(d)}`, this.abs(d));
      const { dirs, files } = await this.list(d);
      for (const f of files) names.push(d === '' ? f : `${d}/${f}`);
      for (const sub of dirs) {
        const rel = d === '' ? sub : `${d}/${sub}`;
        const real = await fs.promises.realpath(this.abs(rel)).catch(() => this.abs(rel));
        if (chain.has(real)) {
          names.push(rel);
          loops.set(rel, `symlink loop: the folder link leads back to ${real}`);
          continue;
        }
        await visit(rel, depth + 1, new Set(chain).add(real));
      }
    };
    const top = await fs.promises.realpath(this.abs(dir)).catch(() => this.abs(dir));
    await visit(dir, 0, new Set([top]));
    names.sort(compareStrings);
    const out: FolderFile[] = new Array(names.length);
    for (let i = 0; i < names.length; i++) {
      if (i > 0 && i % SLICE === 0) await yieldToLoop();
      const loop = loops.get(names[i]);
      out[i] = loop !== undefined ? { path: names[i], size: -1, mtimeMs: 0, error: loop } : this.statFile(names[i]);
    }
    return out;
  }

  /** Size and mtime of a listed file; a vanished file or broken symlink keeps size -1 and the reason. */
  private statFile(rel: string): FolderFile {
    const abs = this.abs(rel);
    try {
      const st = fs.statSync(abs);
      return { path: rel, size: st.size, mtimeMs: st.mtimeMs };
    } catch (e) {
      return { path: rel, size: -1, mtimeMs: 0, error: brokenReason(abs, e) };
    }
  }

  fingerprint(files: readonly SourceFile[]): string {
    const h = createHash('sha256');
    for (const f of files as readonly FolderFile[]) h.update(`${f.path}\0${f.size}\0${f.mtimeMs}\n`);
    return `folder:${files.length}:${h.digest('hex')}`;
  }

  display(file: string): string {
    return this.abs(file);
  }

  async read(files: readonly SourceFile[]): Promise<ReadResult[]> {
    const out: ReadResult[] = new Array(files.length);
    for (let i = 0; i < files.length; i++) {
      if (i > 0 && i % SLICE === 0) await yieldToLoop();
      const listed = (files[i] as FolderFile).error;
      if (listed !== undefined) {
        out[i] = { error: listed };
        continue;
      }
      try {
        out[i] = fs.readFileSync(this.abs(files[i].path));
      } catch (e) {
        out[i] = { error: `cannot read file: ${(e as Error).message}` };
      }
    }
    return out;
  }

  async close(): Promise<void> {}
}

/** Why a listed path cannot be stat'ed: a dangling symlink, a symlink loop, or the error itself. */
function brokenReason(abs: string, e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  let target: string | null = null;
  try {
    if (fs.lstatSync(abs).isSymbolicLink()) target = fs.readlinkSync(abs);
  } catch {
    // gone altogether
  }
  if (target !== null && code === 'ELOOP') return `symlink loop (ELOOP: too many levels of symbolic links, via ${target})`;
  if (target !== null && code === 'ENOENT') return `dangling symlink (ENOENT: its target ${target} does not exist)`;
  return `cannot read file: ${(e as Error).message}`;
}
