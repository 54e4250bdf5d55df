// HTML building blocks of the report: one self-contained page (inline CSS, images as data URIs,
// no script, no external request).

export function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** An HTML fragment that is already safe (built by these helpers). */
export class Html {
  constructor(readonly html: string) {}
  toString(): string {
    return this.html;
  }
}

export const raw = (s: string): Html => new Html(s);

/** Escapes a value unless it is an Html fragment; arrays are joined. */
export function h(v: unknown): string {
  if (v instanceof Html) return v.html;
  if (Array.isArray(v)) return v.map(h).join('');
  if (v === null || v === undefined) return '';
  return esc(v);
}

export function el(tag: string, attrs: Record<string, string | number | boolean | null | undefined>, ...children: unknown[]): Html {
  const a = Object.entries(attrs)
    .filter(([, v]) => v !== null && v !== undefined && v !== false)
    .map(([k, v]) => (v === true ? ` ${k}` : ` ${k}="${esc(v)}"`))
    .join('');
  return raw(`<${tag}${a}>${children.map(h).join('')}</${tag}>`);
}

export function fmtNumber(x: unknown, digits = 4): string {
  if (typeof x !== 'number') return x === null || x === undefined ? '–' : String(x);
  if (!Number.isFinite(x)) return '–';
  if (Number.isInteger(x)) return x.toLocaleString('en-US');
  return x.toFixed(digits);
}

export function fmtPercent(x: unknown, digits = 2): string {
  return typeof x === 'number' && Number.isFinite(x) ? `${(x * 100).toFixed(digits)}%` : '–';
}

export function fmtSeconds(s: unknown): string {
  if (typeof s !== 'number' || !Number.isFinite(s)) return '–';
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** A table; `head` cells are column titles, rows' cells are escaped unless Html. */
export function table(head: unknown[] | null, rows: unknown[][], attrs: Record<string, string> = {}): Html {
  const thead = head ? el('thead', {}, el('tr', {}, ...head.map((c) => el('th', {}, c)))) : '';
  const tbody = el('tbody', {}, ...rows.map((r) => el('tr', {}, ...r.map((c, i) => (i === 0 && !head ? el('th', { scope: 'row' }, c) : el('td', {}, c))))));
  return el('table', attrs, thead, tbody);
}

/** Key/value table (two columns, keys as row headers). */
export function kvTable(pairs: [string, unknown][], attrs: Record<string, string> = {}): Html {
  return table(null, pairs, { class: 'kv', ...attrs });
}

export function dataUri(mime: string, data: Buffer | string): string {
  return `data:${mime};base64,${Buffer.from(data).toString('base64')}`;
}

export const CSS = `
:root { --fg: #1b2631; --muted: #5d6d7e; --line: #d5d8dc; --bg: #f7f9fa; --accent: #2471a3; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 'DejaVu Sans', Verdana, Helvetica, Arial, sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; background: white; min-height: 100vh; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 2px 0; color: var(--muted); }
h2 { font-size: 18px; margin: 34px 0 12px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 8px; }
code, .mono { font-family: 'DejaVu Sans Mono', Menlo, Consolas, monospace; font-size: 12px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 18px 0 6px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 128px; }
.card .v { font-size: 20px; font-weight: bold; }
.card .k { font-size: 12px; color: var(--muted); }
.figures { display: flex; flex-wrap: wrap; gap: 18px 26px; align-items: flex-start; }
figure { margin: 0; }
figure img { display: block; max-width: 100%; height: auto; }
figcaption { font-size: 12px; color: var(--muted); margin-top: 2px; }
figure.gradcam img { image-rendering: pixelated; border: 1px solid var(--line); }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
thead th { background: #eef2f5; font-weight: bold; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv th { font-weight: normal; color: var(--muted); white-space: nowrap; }
table.wide { width: 100%; }
.nowrap { white-space: nowrap; }
tr.best td { background: #eaf5ea; }
.note { background: #fef9e7; border-left: 4px solid #f4d03f; padding: 6px 12px; margin: 8px 0; }
.columns { display: flex; flex-wrap: wrap; gap: 10px 40px; }
footer { margin-top: 40px; font-size: 12px; color: var(--muted); }
`;

export function page(title: string, body: unknown[]): string {
  return (
    '<!DOCTYPE html>\n' +
    `<html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<meta name="generator" content="cifake-torch report">` +
    `<link rel="icon" href="data:,">` +
    `<title>${esc(title)}</title><style>${CSS}</style></head>` +
    `<body><main>${body.map(h).join('\n')}</main></body></html>\n`
  );
}
