// What a load reports: the DatasetSummary of a split (decoded now or from the cache) and its
// few-line text form for the CLI.
import { CacheHeader } from './cache';
import type { IngestStats, Normalized, SourceContext } from './ingest';
import { CLASS_NAMES, DatasetSummary } from './types';

interface SummaryParts extends IngestStats {
  ctx: SourceContext;
  o: Normalized;
  labels: Uint8Array;
  cache: DatasetSummary['cache'];
  seconds: number;
}

export function summarize(p: SummaryParts): DatasetSummary {
  const counts = { FAKE: 0, REAL: 0 };
  for (const l of p.labels) counts[CLASS_NAMES[l]]++;
  return {
    source: p.ctx.path,
    sourceKind: p.ctx.kind,
    split: p.o.split,
    splitPath: p.splitPath,
    count: p.labels.length,
    counts,
    classFolders: p.classFolders,
    listed: p.listed,
    skipped: p.skipped,
    ignored: p.ignored,
    decoded: p.decoded,
    resize: p.o.resize,
    limit: p.o.limit,
    seed: p.o.seed,
    cache: p.cache,
    seconds: p.seconds,
  };
}

/** The ingest statistics a cache header recorded when it was written. */
export function summaryFromHeader(h: CacheHeader): IngestStats {
  return { splitPath: h.splitPath, listed: h.listed, classFolders: h.classFolders, skipped: h.skipped, ignored: h.ignored, decoded: h.decoded };
}

/** Human-readable summary (a few lines) for the CLI. */
export function formatSummary(s: DatasetSummary, maxNames = 10): string {
  const lines: string[] = [];
  const src = s.cache.hit ? 'cache' : 'decoded';
  lines.push(
    `${s.split}: ${s.count} images (FAKE ${s.counts.FAKE}, REAL ${s.counts.REAL}) from ${s.source}${s.splitPath ? `:${s.splitPath}` : ''} [${src}, ${s.seconds.toFixed(2)} s]`,
  );
  if (s.limit !== null) lines.push(`  limit ${s.limit} per class (seed ${s.seed}) of ${s.listed} files`);
  if (s.decoded.sharp > 0 || s.decoded.resized > 0) lines.push(`  decoded: ${s.decoded.native} native (libjpeg-turbo), ${s.decoded.sharp} with sharp, ${s.decoded.resized} resized`);
  if (s.skipped.count > 0) {
    lines.push(`  skipped ${s.skipped.count} unreadable file${s.skipped.count === 1 ? '' : 's'}:`);
    for (const f of s.skipped.files.slice(0, maxNames)) lines.push(`    ${f.file}: ${f.reason}`);
    if (s.skipped.count > maxNames) lines.push(`    ... and ${s.skipped.count - maxNames} more`);
  }
  if (s.ignored.count > 0) lines.push(`  ignored ${s.ignored.count} file(s) outside class folders, e.g. ${s.ignored.files.slice(0, 3).join(', ')}`);
  if (s.cache.note !== undefined) lines.push(`  ${s.cache.note}`);
  return lines.join('\n');
}
