/**
 * Sweep grids: the paper's two-stage topology grid and user grids (a base config plus axes over
 * config field paths, expanded as a cartesian product), with stable trial names.
 *
 * A user grid file (JSON, or YAML with the extension .yaml / .yml):
 *
 *   name: lr-filters            # optional: default sweep folder name (else the file's basename)
 *   description: ...            # optional, free text
 *   preset: paper-cnn           # optional: the preset under `base` (default: none = paper-cnn defaults)
 *   base:                       # optional: config fields shared by every trial (shorthands allowed)
 *     epochs: 5
 *   axes:                       # config field path -> list of values; cartesian product, the last axis varies fastest
 *     model.convFilters: [[16, 32], [32, 64]]
 *     optimizer.lr: [1.0e-3, 3.0e-4]
 *
 * Resolution of a trial's config: preset ← base ← sweep flags (--data, --limit, --epochs, ...) ←
 * the trial's axis values ← what the sweep controls (outDir = the sweep folder, name = the trial
 * name, threads). A sweep flag on a field that is also an axis is an error, as are `outDir`,
 * `name` (set by the sweep) in `base` or the axes and `threads` as an axis (`threads` in `base` is
 * an upper bound). Axis paths are dotted object paths (`model.dropout`); a path that is a prefix
 * of another (`model` and `model.dense`) is an error. Values replace the field (arrays replace).
 * A relative `base.data` is taken relative to the current directory (as --data).
 *
 * Trial names (the run directory of each trial) come from the axis values only, so they are stable
 * across re-runs and grid edits that keep an axis: `convFilters-16-32_lr-0.001`. The key is the
 * last path segment (the full path when two axes share it); arrays are joined with '-'. A value
 * that cannot be written exactly in [A-Za-z0-9.-] (strings with other characters, objects) or a
 * name longer than 100 characters gets a hash of the values appended; so do names that would
 * otherwise collide.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { canonicalJson } from '../util/canonical-json';

import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

import { ConfigError, isPresetName, PRESET_NAMES, validateConfig, type ConfigIssue, type PresetName } from '../config';

/** Invalid sweep grid or sweep options: exit code 2 in the CLI (a ConfigError). */
export class GridError extends ConfigError {
  constructor(issues: ConfigIssue[] | string) {
    const list = typeof issues === 'string' ? [{ path: '', message: issues }] : issues;
    super(list);
    this.name = 'GridError';
    this.message =
      list.length === 1 && !list[0].path
        ? `Invalid sweep: ${list[0].message}`
        : `Invalid sweep grid (${list.length} issue${list.length === 1 ? '' : 's'}):\n${list.map((i) => `  ${i.path || '(grid)'}: ${i.message}`).join('\n')}`;
  }
}

export interface Axis {
  /** dotted config field path, e.g. `model.convFilters` */
  path: string;
  values: unknown[];
}

/** A user grid (or the paper grid's shared part). */
export interface GridSpec {
  kind: 'paper' | 'user';
  /** default sweep folder name */
  name: string;
  description?: string;
  preset: PresetName | null;
  /** shared config layer (shorthands allowed), applied over the preset */
  base: Record<string, unknown>;
  /** empty for the paper grid, whose trials come from `paperGrid()` */
  axes: Axis[];
  /** the file the grid came from */
  source?: string;
}

/** A feature extractor of the paper grid: `layers` conv layers of `filters` filters each. */
export interface Extractor {
  layers: number;
  filters: number;
}

export interface TrialSpec {
  /** run directory name inside the sweep folder: stable, derived from the parameters */
  name: string;
  /** paper grid: 1 = feature extractors, 2 = dense heads on the chosen extractor; user grids: null */
  stage: 1 | 2 | null;
  /** axis path -> value */
  params: Record<string, unknown>;
  /** the nested config layer made of `params` */
  overrides: Record<string, unknown>;
  /** paper grid: the trial's extractor */
  extractor?: Extractor;
}

// ---------------------------------------------------------------------------
// the paper grid (Bird & Lotfi, CIFAKE, IEEE Access 2024)

export const PAPER_CONV_LAYERS = [1, 2, 3] as const;
export const PAPER_CONV_FILTERS = [16, 32, 64, 128] as const;
export const PAPER_DENSE_LAYERS = [1, 2, 3] as const;
export const PAPER_DENSE_UNITS = [32, 64, 128, 256, 512, 1024, 2048, 4096] as const;
/** The extractor the paper selected in stage 1: two conv layers of 32 filters. */
export const PAPER_EXTRACTOR: Readonly<Extractor> = Object.freeze({ layers: 2, filters: 32 });
export const PAPER_PRESET: PresetName = 'paper-cnn';

const repeat = (n: number, v: number) => Array.from({ length: n }, () => v);

/** `2x32`: layers x width, the paper's notation. */
export function extractorLabel(e: Extractor): string {
  return `${e.layers}x${e.filters}`;
}

function paperTrial(stage: 1 | 2, extractor: Extractor, dense: number[]): TrialSpec {
  const convFilters = repeat(extractor.layers, extractor.filters);
  const name = `s${stage}-conv${extractorLabel(extractor)}${stage === 2 ? `-dense${dense.length}x${dense[0]}` : ''}`;
  const params = { 'model.convFilters': convFilters, 'model.dense': dense };
  return {
    name,
    stage,
    params,
    overrides: { model: { family: 'original', convFilters: [...convFilters], dense: [...dense] } },
    extractor: { ...extractor },
  };
}

/** Stage 1: the 12 feature extractors (1-3 conv layers x 16-128 filters), no dense layers. */
export function paperStage1(): TrialSpec[] {
  const out: TrialSpec[] = [];
  for (const layers of PAPER_CONV_LAYERS) for (const filters of PAPER_CONV_FILTERS) out.push(paperTrial(1, { layers, filters }, []));
  return out;
}

/** Stage 2: the 24 dense heads (1-3 layers x 32-4096 units, one width per head) on `extractor`. */
export function paperStage2(extractor: Extractor = PAPER_EXTRACTOR): TrialSpec[] {
  if (!(Number.isInteger(extractor.layers) && extractor.layers >= 1 && Number.isInteger(extractor.filters) && extractor.filters >= 1))
    throw new GridError(`invalid extractor ${JSON.stringify(extractor)}`);
  const out: TrialSpec[] = [];
  for (const layers of PAPER_DENSE_LAYERS) for (const units of PAPER_DENSE_UNITS) out.push(paperTrial(2, extractor, repeat(layers, units)));
  return out;
}

/** All 36 trials: stage 1, then stage 2 on `extractor` (default the paper's 2 x 32). */
export function paperGrid(extractor: Extractor = PAPER_EXTRACTOR): TrialSpec[] {
  return [...paperStage1(), ...paperStage2(extractor)];
}

export function paperGridSpec(): GridSpec {
  return {
    kind: 'paper',
    name: 'paper',
    description: 'Bird & Lotfi topology search: 12 feature extractors, then 24 dense heads on the best one',
    preset: PAPER_PRESET,
    base: {},
    axes: [],
  };
}

// ---------------------------------------------------------------------------
// user grids

const NAME_RE = /^[A-Za-z0-9._-]{1,100}$/;
const SEGMENT_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** fields the sweep sets itself */
const SWEEP_OWNED = ['outDir', 'name'] as const;

const GridFileSchema = z.strictObject({
  name: z.string().optional(),
  description: z.string().optional(),
  preset: z.string().nullable().optional(),
  base: z.record(z.string(), z.unknown()).nullable().optional(),
  axes: z.record(z.string(), z.unknown()),
});

let topLevelKeys: Set<string> | undefined;
/** the top-level keys of a training config */
function configKeys(): Set<string> {
  topLevelKeys ??= new Set(Object.keys(validateConfig({})));
  return topLevelKeys;
}

/** Validates a parsed grid object; `source` names it in messages and gives the default name. */
export function parseGrid(input: unknown, source?: string): GridSpec {
  const r = GridFileSchema.safeParse(input);
  if (!r.success) {
    throw new GridError(
      r.error.issues.map((i) => ({
        path: i.path.map(String).join('.'),
        message:
          i.code === 'unrecognized_keys'
            ? `unknown key(s) ${i.keys.join(', ')} (allowed: name, description, preset, base, axes)`
            : i.path.length === 0
              ? 'a grid must be an object { preset?, base?, axes }'
              : i.message,
      })),
    );
  }
  const g = r.data;
  const issues: ConfigIssue[] = [];
  let preset: PresetName | null = null;
  if (g.preset !== undefined && g.preset !== null) {
    if (isPresetName(g.preset)) preset = g.preset;
    else issues.push({ path: 'preset', message: `unknown preset ${JSON.stringify(g.preset)} (allowed: ${PRESET_NAMES.join(', ')})` });
  }
  const base = g.base ?? {};
  for (const k of SWEEP_OWNED) if (k in base) issues.push({ path: `base.${k}`, message: `is set by the sweep (use --out-dir / --name of the sweep)` });
  const axes: Axis[] = [];
  for (const [p, values] of Object.entries(g.axes)) {
    const where = `axes.${p}`;
    const segs = p.split('.');
    if (!segs.every((s) => SEGMENT_RE.test(s))) {
      issues.push({ path: where, message: 'an axis is a dotted config field path such as model.convFilters or optimizer.lr' });
      continue;
    }
    if (!configKeys().has(segs[0])) {
      issues.push({ path: where, message: `unknown config field '${segs[0]}' (allowed: ${[...configKeys()].join(', ')})` });
      continue;
    }
    if ((SWEEP_OWNED as readonly string[]).includes(p) || p === 'threads') {
      issues.push({ path: where, message: `${p} is set by the sweep and cannot be an axis` });
      continue;
    }
    if (!Array.isArray(values) || values.length === 0) {
      issues.push({ path: where, message: 'must be a non-empty list of values' });
      continue;
    }
    const seen = new Set<string>();
    for (const v of values) {
      const k = canonicalJson(v);
      if (seen.has(k)) issues.push({ path: where, message: `value ${k} is listed twice` });
      seen.add(k);
    }
    axes.push({ path: p, values: values.map((v) => structuredClone(v)) });
  }
  for (const a of axes)
    for (const b of axes)
      if (a !== b && b.path.startsWith(`${a.path}.`)) issues.push({ path: `axes.${b.path}`, message: `overlaps the axis ${a.path}` });
  const fallbackName = source ? path.basename(source).replace(/\.(json|ya?ml)$/i, '') : 'sweep';
  const name = g.name ?? sanitizeName(fallbackName);
  if (!NAME_RE.test(name) || name === '.' || name === '..') issues.push({ path: 'name', message: 'must be 1-100 characters from A-Z a-z 0-9 . _ -' });
  if (issues.length) throw new GridError(issues);
  return { kind: 'user', name, description: g.description, preset, base: structuredClone(base), axes, source };
}

/** Reads a grid file: JSON, or YAML when the extension is .yaml / .yml. */
export function loadGridFile(file: string): GridSpec {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new GridError(`cannot read the grid file ${file}: ${(e as Error).message}`);
  }
  let parsed: unknown;
  const yaml = /\.ya?ml$/i.test(file);
  try {
    parsed = yaml ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw new GridError(`${file} is not valid ${yaml ? 'YAML' : 'JSON'}: ${(e as Error).message.split('\n')[0]}`);
  }
  return parseGrid(parsed, file);
}

/** Sets a dotted path in a nested plain object, creating objects on the way. */
export function setPath(target: Record<string, unknown>, dotted: string, value: unknown): void {
  const segs = dotted.split('.');
  let o = target;
  for (const s of segs.slice(0, -1)) {
    const next = o[s];
    if (next === undefined || next === null || typeof next !== 'object' || Array.isArray(next)) o[s] = {};
    o = o[s] as Record<string, unknown>;
  }
  o[segs[segs.length - 1]] = structuredClone(value);
}

/** The trials of a user grid, in cartesian order (the last axis varies fastest). */
export function expandGrid(grid: GridSpec): TrialSpec[] {
  if (grid.kind === 'paper') return paperGrid();
  let combos: Record<string, unknown>[] = [{}];
  for (const axis of grid.axes) {
    const next: Record<string, unknown>[] = [];
    for (const c of combos) for (const v of axis.values) next.push({ ...c, [axis.path]: v });
    combos = next;
  }
  const names = trialNames(combos, grid.axes.map((a) => a.path));
  return combos.map((params, i) => {
    const overrides: Record<string, unknown> = {};
    for (const [p, v] of Object.entries(params)) setPath(overrides, p, v);
    return { name: names[i], stage: null, params, overrides };
  });
}

// ---------------------------------------------------------------------------
// naming

function sanitizeName(s: string): string {
  const out = s.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 100);
  return out && out !== '.' && out !== '..' ? out : 'sweep';
}

/** [text, exact]: exact = the text identifies the value among values of the same shape */
function valueSlug(v: unknown): [string, boolean] {
  if (typeof v === 'number') {
    const s = String(v);
    return /^[0-9.e-]+$/i.test(s) ? [s, true] : [s.replace(/[^A-Za-z0-9.-]/g, ''), false];
  }
  if (typeof v === 'boolean' || v === null) return [String(v), true];
  if (typeof v === 'string') {
    const s = v.replace(/[^A-Za-z0-9.]+/g, '');
    return [s || 'str', s === v && s !== ''];
  }
  if (Array.isArray(v)) {
    if (v.length === 0) return ['none', true];
    const parts = v.map(valueSlug);
    const nested = v.some((x) => x !== null && typeof x === 'object');
    return [parts.map((p) => p[0]).join('-'), !nested && parts.every((p) => p[1])];
  }
  if (v !== null && typeof v === 'object') {
    const parts = Object.keys(v)
      .sort()
      .map((k) => `${k.replace(/[^A-Za-z0-9]/g, '')}-${valueSlug((v as Record<string, unknown>)[k])[0]}`);
    return [parts.join('-') || 'obj', false];
  }
  return ['value', false];
}

function hash8(params: Record<string, unknown>): string {
  return createHash('sha1').update(canonicalJson(params)).digest('hex').slice(0, 8);
}

/** Short axis keys: the last path segment, or the full path where two axes share it. */
function axisKeys(paths: string[]): Map<string, string> {
  const last = (p: string) => p.split('.').at(-1) as string;
  const count = new Map<string, number>();
  for (const p of paths) count.set(last(p), (count.get(last(p)) ?? 0) + 1);
  return new Map(paths.map((p) => [p, count.get(last(p))! > 1 ? p : last(p)]));
}

/** Names of trials with these params (one name each, unique, valid run directory names). */
export function trialNames(combos: Record<string, unknown>[], paths: string[]): string[] {
  const keys = axisKeys(paths);
  const first = combos.map((params) => {
    if (paths.length === 0) return { name: 'base', exact: true };
    const parts: string[] = [];
    let exact = true;
    for (const p of paths) {
      const [text, ok] = valueSlug(params[p]);
      exact &&= ok;
      parts.push(`${keys.get(p)}-${text}`);
    }
    return { name: parts.join('_'), exact };
  });
  const seen = new Map<string, number>();
  for (const f of first) seen.set(f.name, (seen.get(f.name) ?? 0) + 1);
  return first.map((f, i) => {
    if (f.exact && f.name.length <= 100 && seen.get(f.name) === 1) return f.name;
    return `${f.name.slice(0, 91)}-${hash8(combos[i])}`;
  });
}

/** Default sweep folder name: the grid's name plus the sweep-wide settings that change results. */
export function defaultSweepName(grid: GridSpec, flags: { limit?: number | null; epochs?: number | null; seed?: number | null }): string {
  let n = grid.name;
  if (flags.limit != null) n += `-limit${flags.limit}`;
  if (flags.epochs != null) n += `-ep${flags.epochs}`;
  if (flags.seed != null) n += `-seed${flags.seed}`;
  return sanitizeName(n);
}

export function isValidSweepName(name: string): boolean {
  return NAME_RE.test(name) && name !== '.' && name !== '..';
}
