// General file helpers: atomic writes (readers never see half a file) and JSON read/write with
// errors that name the file.
import fs from 'node:fs';

/** Writes `text` beside `file`, fsyncs, then renames over it: readers never see half a file. */
export function writeFileAtomic(file: string, text: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, typeof text === 'string' ? Buffer.from(text) : text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/** Pretty JSON, written atomically; `compact` writes one line. */
export function writeJson(file: string, value: unknown, compact = false): void {
  writeFileAtomic(file, `${compact ? JSON.stringify(value) : JSON.stringify(value, null, 2)}\n`);
}

export function readJson<T>(file: string): T {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${file} is not valid JSON: ${(e as Error).message}`);
  }
}

/** readJson, or null when the file does not exist. */
export function readJsonIfExists<T>(file: string): T | null {
  return fs.existsSync(file) ? readJson<T>(file) : null;
}
