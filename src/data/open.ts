// Opening a data source: a folder, or anything else as a zip file.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from './errors';
import { FolderSource } from './folder';
import { DataSource } from './source';
import { openZipSource } from './zip';

/** A data path resolved and stat'ed: a folder, or a file read as a zip. Errors name the path. */
export async function statSource(data: string): Promise<{ abs: string; st: fs.Stats; kind: 'zip' | 'folder' }> {
  const abs = path.resolve(data);
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DataError(
      code === 'ENOENT' ? `data not found: ${abs} (expected a CIFAKE zip or a folder)` : `cannot read ${abs}: ${(e as Error).message}`,
      abs,
    );
  }
  if (!st.isDirectory() && !st.isFile()) throw new DataError(`${abs} is neither a zip file nor a folder`, abs);
  return { abs, st, kind: st.isDirectory() ? 'folder' : 'zip' };
}

/** Opens a zip file or a folder. */
export async function openSource(data: string): Promise<DataSource> {
  const { abs, kind } = await statSource(data);
  return kind === 'folder' ? new FolderSource(abs) : openZipSource(abs);
}
