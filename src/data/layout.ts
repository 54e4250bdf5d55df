// Finding <split>/<class>/ folders in a source, with an optional single wrapper folder (archive/).
import { DataError, EXPECTED_LAYOUT } from './errors';
import { compareStrings, DataSource, isIgnoredName, SourceFile } from './source';
import { CLASS_NAMES, ClassMap, ClassName, DEFAULT_CLASS_MAP, Label } from './types';

/** Class map with lower-case keys, validated. */
export type NormalizedClassMap = Record<string, Label>;

export function normalizeClassMap(map: ClassMap | undefined): NormalizedClassMap {
  const src = map ?? DEFAULT_CLASS_MAP;
  const out: NormalizedClassMap = {};
  for (const [name, label] of Object.entries(src)) {
    if (name === '' || name.includes('/')) throw new DataError(`classMap: invalid folder name ${JSON.stringify(name)}`);
    if (label !== 0 && label !== 1) throw new DataError(`classMap: label of ${JSON.stringify(name)} must be 0 (FAKE) or 1 (REAL), got ${JSON.stringify(label)}`);
    const key = name.toLowerCase();
    if (key in out && out[key] !== label) throw new DataError(`classMap: ${JSON.stringify(name)} is mapped to both labels (folder names are case-insensitive)`);
    out[key] = label;
  }
  for (const label of [0, 1] as const) {
    if (!Object.values(out).includes(label)) throw new DataError(`classMap: no folder maps to label ${label} (${CLASS_NAMES[label]})`);
  }
  // Sorted keys: a stable form for cache keys.
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => compareStrings(a, b)));
}

export function describeClassMap(map: NormalizedClassMap): string {
  return Object.entries(map)
    .map(([k, v]) => `${k} -> ${v} (${CLASS_NAMES[v]})`)
    .join(', ');
}

const MAX_WRAPPER_DEPTH = 3;

function join(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

async function visibleListing(source: DataSource, dir: string): Promise<{ dirs: string[]; files: string[] }> {
  const l = await source.list(dir);
  return { dirs: l.dirs.filter((d) => !isIgnoredName(d)), files: l.files.filter((f) => !isIgnoredName(f)) };
}

/** true when dir has at least one sub-folder named like a class. */
async function looksLikeSplit(source: DataSource, dir: string, map: NormalizedClassMap): Promise<boolean> {
  const { dirs } = await visibleListing(source, dir);
  return dirs.some((d) => d.toLowerCase() in map);
}

/**
 * The data root: the source root, or the folder inside a chain of single wrapper folders (a folder
 * with one sub-folder and no files, which is not itself a split) that holds the splits.
 */
export async function findDataRoot(source: DataSource, map: NormalizedClassMap, split?: string): Promise<string> {
  let dir = '';
  for (let depth = 0; depth <= MAX_WRAPPER_DEPTH; depth++) {
    const { dirs, files } = await visibleListing(source, dir);
    if (split !== undefined && dirs.some((d) => d.toLowerCase() === split.toLowerCase())) return dir;
    if (dirs.length !== 1 || files.length > 0) return dir;
    if (await looksLikeSplit(source, dir, map)) return dir; // dir itself holds class folders
    const only = join(dir, dirs[0]);
    if (await looksLikeSplit(source, only, map)) return dir; // its only child is a split
    dir = only;
  }
  return dir;
}

/** Split folders (those with class folders) under the data root. */
export async function listSplits(source: DataSource, map: NormalizedClassMap): Promise<{ root: string; splits: string[] }> {
  const root = await findDataRoot(source, map);
  const { dirs } = await visibleListing(source, root);
  const splits: string[] = [];
  for (const d of dirs) if (await looksLikeSplit(source, join(root, d), map)) splits.push(d);
  return { root, splits };
}

export interface ClassFiles {
  label: Label;
  /** Folder name as found in the source. */
  folder: string;
  files: SourceFile[];
}

export interface SplitLayout {
  /** Folder of the data root in the source ('' or e.g. 'archive'). */
  root: string;
  /** Folder of the split in the source, e.g. 'archive/train'. */
  splitPath: string;
  /** The split folder's name as found (case may differ from the requested one). */
  splitName: string;
  classes: ClassFiles[];
  /** Every file under the split folder (for the fingerprint), sorted by path. */
  allFiles: SourceFile[];
  /** Files in the split folder that are not in a class folder (not hidden litter), paths in the source. */
  ignored: string[];
}

function where(source: DataSource, dir: string): string {
  return dir === '' ? source.path : source.display(dir);
}

/** Finds the split's class folders and lists their files, or throws a DataError that shows the expected layout. */
export async function resolveSplit(source: DataSource, split: string, map: NormalizedClassMap): Promise<SplitLayout> {
  if (split === '' || split.includes('/')) throw new DataError(`invalid split name ${JSON.stringify(split)}`);
  const root = await findDataRoot(source, map, split);
  const top = await visibleListing(source, root);
  const matches = top.dirs.filter((d) => d.toLowerCase() === split.toLowerCase());
  if (matches.length === 0) {
    const found = top.dirs.length > 0 ? `found folders: ${top.dirs.join(', ')}` : 'it has no folders';
    throw new DataError(`no '${split}' folder in ${where(source, root)} (${found}).\n${EXPECTED_LAYOUT}`, where(source, root));
  }
  if (matches.length > 1) throw new DataError(`ambiguous split '${split}' in ${where(source, root)}: ${matches.join(', ')} (folder names are case-insensitive)`);
  const splitName = matches[0];
  const splitPath = join(root, splitName);
  const listing = await visibleListing(source, splitPath);
  const unknown = listing.dirs.filter((d) => !(d.toLowerCase() in map));
  if (unknown.length > 0) {
    throw new DataError(
      `${where(source, splitPath)} has folders that are not classes: ${unknown.join(', ')} (class map: ${describeClassMap(map)}). ` +
        `Map them with classMap or remove them.\n${EXPECTED_LAYOUT}`,
      where(source, splitPath),
    );
  }
  const allFiles = await source.walk(splitPath);
  const classes: ClassFiles[] = [];
  for (const folder of listing.dirs) {
    const prefix = `${splitPath}/${folder}/`;
    const files = allFiles.filter((f) => f.path.startsWith(prefix) && !f.path.slice(prefix.length).split('/').some(isIgnoredName));
    classes.push({ label: map[folder.toLowerCase()], folder, files });
  }
  for (const label of [0, 1] as const) {
    const name: ClassName = CLASS_NAMES[label];
    const folders = classes.filter((c) => c.label === label);
    if (folders.length === 0) {
      const wanted = Object.keys(map).filter((k) => map[k] === label);
      const found = listing.dirs.length > 0 ? `found: ${listing.dirs.join(', ')}` : 'it has no folders';
      throw new DataError(
        `missing class ${name} (label ${label}) in ${where(source, splitPath)}: expected a folder named ${wanted.map((w) => w.toUpperCase()).join(' or ')} (${found}).\n${EXPECTED_LAYOUT}`,
        where(source, splitPath),
      );
    }
    for (const c of folders) {
      if (c.files.length === 0) {
        throw new DataError(`class ${name} folder ${where(source, join(splitPath, c.folder))} is empty.\n${EXPECTED_LAYOUT}`, where(source, join(splitPath, c.folder)));
      }
    }
  }
  const inClass = new Set<string>();
  for (const c of classes) for (const f of c.files) inClass.add(f.path);
  const ignored = allFiles
    .filter((f) => !inClass.has(f.path))
    .map((f) => f.path)
    .filter((p) => !p.slice(splitPath.length + 1).split('/').some(isIgnoredName));
  return { root, splitPath, splitName, classes, allFiles, ignored };
}
