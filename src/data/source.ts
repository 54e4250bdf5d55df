// A data source is a zip file or a folder seen as a tree of files with '/'-separated paths.

export interface SourceFile {
  /** Path inside the source, '/'-separated, no leading slash. */
  path: string;
  size: number;
}

/** Result of reading one file: its bytes, or why it could not be read. */
export type ReadResult = Buffer | { error: string };

export interface DirListing {
  dirs: string[];
  files: string[];
}

export interface DataSource {
  readonly kind: 'zip' | 'folder';
  /** Absolute path of the zip file or folder. */
  readonly path: string;
  /** Immediate children of a folder of the source ('' is the root). */
  list(dir: string): Promise<DirListing>;
  /** Every file below dir (recursively), sorted by path. */
  walk(dir: string): Promise<SourceFile[]>;
  /**
   * Reads files (from walk) in one batch; the result is in the same order. Per-file failures are
   * returned, not thrown. With an arena, the returned buffers may live in it (valid until its reset).
   */
  read(files: readonly SourceFile[], arena?: ReadArena): Promise<ReadResult[]>;
  /** Identifies the content of these files (a change of any of them changes it). */
  fingerprint(files: readonly SourceFile[]): string;
  /** How to name a file of the source in messages. */
  display(file: string): string;
  close(): Promise<void>;
}

/**
 * Bump allocator over a reusable buffer, for the reads of one batch: successive batches reuse the
 * same memory instead of allocating fresh buffers (new pages are slow to fault in). Buffers taken
 * before reset() must no longer be used after it.
 */
export class ReadArena {
  private buf: Buffer = Buffer.alloc(0);
  private used = 0;

  reset(): void {
    this.used = 0;
  }

  take(bytes: number): Buffer {
    if (this.used + bytes > this.buf.length) {
      // Earlier takes keep the old buffer alive; the next reset() reuses the bigger one.
      this.buf = Buffer.allocUnsafe(Math.max(bytes, 2 * this.buf.length, 1 << 20));
      this.used = 0;
    }
    const b = this.buf.subarray(this.used, this.used + bytes);
    this.used += bytes;
    return b;
  }
}

/** Names that are never data: hidden files (.DS_Store, ._x AppleDouble), macOS and Windows litter. */
export function isIgnoredName(name: string): boolean {
  return name.startsWith('.') || name === '__MACOSX' || name === 'Thumbs.db' || name === 'desktop.ini';
}

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Runs fn over items with at most `limit` calls in flight; results keep the input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}
