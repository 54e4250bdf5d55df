// Text widths for vega's layout without a canvas. Vega's own estimate (0.8 em per character) is
// far too wide for proportional fonts and leaves charts padded with blank space; these are the
// advance widths of DejaVu Sans (the first font of CHART_FONT, packaged by Debian as
// fonts-dejavu-core), so the layout fits what librsvg and browsers draw.
/** Advance widths of ASCII 0x20..0x7E in 1/1000 em: DejaVu Sans Book. */
const REGULAR: readonly number[] = [318,401,460,838,636,950,780,275,390,390,500,838,318,361,318,337,636,636,636,636,636,636,636,636,636,636,337,337,838,838,838,531,1000,684,686,698,770,632,575,775,752,295,295,656,557,863,748,787,603,787,695,635,611,732,684,989,685,611,685,390,337,390,838,500,500,613,635,550,635,615,352,635,634,278,278,579,278,974,634,612,635,635,411,521,392,634,592,818,592,592,525,636,337,636,838];
/** The same for DejaVu Sans Bold. */
const BOLD: readonly number[] = [348,456,521,838,696,1002,872,306,457,457,523,838,380,415,380,365,696,696,696,696,696,696,696,696,696,696,400,400,838,838,838,580,1000,774,762,734,830,683,683,821,837,372,372,775,637,995,837,850,733,850,770,720,682,812,774,1103,771,724,725,457,365,457,838,500,500,675,716,593,716,678,435,716,712,343,343,665,343,1042,712,687,716,716,493,595,478,712,652,924,645,652,582,712,365,712,838];
/** Width of characters outside the table (em). */
const OTHER_EM = 0.65;

interface TextItem {
  fontSize?: number | string;
  fontWeight?: number | string;
  limit?: number;
}

function isBold(weight: number | string | undefined): boolean {
  if (weight === undefined || weight === null) return false;
  if (typeof weight === 'number') return weight >= 600;
  return weight === 'bold' || weight === 'bolder' || Number(weight) >= 600;
}

/** Width in pixels of `text` set in DejaVu Sans at `fontSize` px. */
export function textWidth(text: string, fontSize: number, bold = false): number {
  const table = bold ? BOLD : REGULAR;
  let em = 0;
  for (const ch of text) {
    const c = ch.codePointAt(0) ?? 0;
    em += c >= 32 && c < 127 ? table[c - 32] / 1000 : OTHER_EM;
  }
  return em * fontSize;
}

type Metrics = { width: (item: TextItem, text: unknown) => number };

let installed = false;

/** Makes vega measure text with the DejaVu Sans table (idempotent; affects this process's vega). */
export function installTextMetrics(vega: object): void {
  if (installed) return;
  const metrics = (vega as { textMetrics?: Metrics }).textMetrics;
  if (!metrics) return; // another vega build: keep its estimate
  metrics.width = (item: TextItem, text: unknown) => {
    const s = text === null || text === undefined ? '' : String(text).trim();
    const size = item.fontSize !== undefined && item.fontSize !== null ? Number(item.fontSize) || 0 : 11;
    const w = textWidth(s, size, isBold(item.fontWeight));
    return item.limit && item.limit > 0 ? Math.min(w, item.limit) : w;
  };
  installed = true;
}
