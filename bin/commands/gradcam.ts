// cifake gradcam: Grad-CAM / HiResCAM of image files (one triptych each) or of a dataset split
// (gallery of the most confident and misclassified images, class-mean maps over the whole split).
import fs from 'node:fs';
import path from 'node:path';

import { Command, InvalidArgumentError, Option } from 'commander';
import sharp from 'sharp';

import { Classifier, data, describeCheckpoint, gradcam, run } from '../../src';
import { positiveInt, threadsArg, unit } from '../cli-helpers';

const { CAM_METHODS, COLORMAP_NAMES, LABEL_NAMES, assertLayer, compareMethods, explainDataset, explainImages, explanationAt, formatFaithfulnessTable, renderExplained } = gradcam;
type ColormapName = gradcam.ColormapName;
type ExplainMethod = gradcam.ExplainMethod;
type ExplainTarget = gradcam.ExplainTarget;


interface GradcamFlags {
  model: string;
  data?: string;
  split: string;
  sample: number;
  limit?: number;
  out: string;
  method: ExplainMethod;
  target: ExplainTarget;
  layer?: string;
  colormap: ColormapName;
  alpha: number;
  threshold?: number;
  device: string;
  threads?: number;
  batchSize: number;
  scale?: number;
  palette?: boolean;
  json?: boolean;
  faithfulness?: boolean;
  methods?: gradcam.CamMethod[];
}

const methodList = (v: string): gradcam.CamMethod[] => {
  const ms = v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const m of ms) if (!(CAM_METHODS as readonly string[]).includes(m)) throw new InvalidArgumentError(`--methods: unknown method '${m}' (allowed: ${CAM_METHODS.join(', ')})`);
  return ms as gradcam.CamMethod[];
};

/** --faithfulness: every method (and the random / centre baselines) scored with ROAD and deletion / insertion on a split. */
async function faithfulnessOfSplit(clf: Classifier, f: GradcamFlags, layer: string): Promise<void> {
  const set = await data.loadSplit(f.data!, { split: f.split, limit: f.limit ?? 50 });
  const report = await compareMethods(clf.native, set.images, {
    methods: f.methods,
    layer,
    onRow: f.json ? undefined : (r) => process.stderr.write(`  ${r.method}: ROAD combined ${r.roadCombined.toFixed(4)}\n`),
  });
  const file = run.writeFaithfulnessJson(f.out, { checkpoint: clf.info.checkpoint, data: f.data, split: f.split, ...report });
  if (f.json) process.stdout.write(`${JSON.stringify({ ...report, json: file })}\n`);
  else process.stdout.write(`${describeCheckpoint(clf.info.checkpoint)} on ${f.split} of ${f.data}\n${formatFaithfulnessTable(report)}\nnumbers: ${file}\n`);
}

/** PNG as rendered, or re-encoded with an 8-bit palette (about 3x smaller; for documentation). */
async function png(buf: Buffer, palette: boolean | undefined): Promise<Buffer> {
  return palette ? sharp(buf).png({ palette: true, dither: 0, effort: 8, compressionLevel: 9 }).toBuffer() : buf;
}

/** Rows of a row-major square map, values to 4 significant digits. */
function rows(a: Float32Array, side: number): number[][] {
  const out: number[][] = [];
  for (let y = 0; y < side; y++) out.push(Array.from(a.subarray(y * side, (y + 1) * side), (v) => (v === 0 ? 0 : Number(v.toPrecision(4)))));
  return out;
}

/** `photo.jpg` -> `photo`, unique within one run (`photo-2`, ...). */
function uniqueStems(files: readonly string[]): string[] {
  const used = new Set<string>();
  return files.map((f) => {
    const base = path.basename(f).replace(/\.[^.]*$/, '') || 'image';
    let stem = base;
    for (let k = 2; used.has(stem.toLowerCase()); k++) stem = `${base}-${k}`;
    used.add(stem.toLowerCase());
    return stem;
  });
}

const r6 = (v: number) => Number(v.toPrecision(6));

/** Decodes each file on its own: a bad file is reported (as `predict` does) and the others go on. */
async function decodeEach(clf: Classifier, files: string[]): Promise<{ good: string[]; images: Uint8Array; bad: { file: string; error: string }[] }> {
  const good: string[] = [];
  const parts: Uint8Array[] = [];
  const bad: { file: string; error: string }[] = [];
  for (const file of files) {
    try {
      parts.push(await clf.decode([file]));
      good.push(file);
    } catch (e) {
      bad.push({ file, error: (e as Error).message });
    }
  }
  const images = new Uint8Array(parts.length * 3072);
  parts.forEach((p, i) => images.set(p, i * 3072));
  return { good, images, bad };
}

async function explainFiles(clf: Classifier, all: string[], f: GradcamFlags, layer: string): Promise<void> {
  const { good: files, images, bad } = await decodeEach(clf, all);
  if (bad.length) process.exitCode = 1;
  if (files.length === 0) {
    const doc = { errors: bad };
    process.stdout.write(f.json ? `${JSON.stringify(doc)}\n` : `${bad.map((b) => `${b.file}  ERROR (${b.error})`).join('\n')}\n`);
    return;
  }
  const e = await explainImages(clf.native, images, {
    layer,
    method: f.method,
    target: f.target,
    threshold: clf.threshold,
    batchSize: f.batchSize,
  });
  const stems = uniqueStems(files);
  const results = [];
  for (let i = 0; i < e.n; i++) {
    const it = explanationAt(e, i);
    const pngFile = run.gradcamImagePng(f.out, stems[i]!);
    run.writeGradcamPng(pngFile, await png(await renderExplained(images, e, i, { fileName: path.basename(files[i]!), colormap: f.colormap, alpha: f.alpha, scale: f.scale }), f.palette));
    results.push({
      file: files[i]!,
      png: pngFile,
      pReal: r6(it.pReal),
      predicted: LABEL_NAMES[it.predicted],
      target: LABEL_NAMES[it.target],
      rawMax: r6(it.rawMax),
      rawMap: rows(it.raw, e.layerSize),
      map: rows(it.map, e.size),
    });
  }
  const doc = {
    checkpoint: clf.info.checkpoint,
    layer: e.layer,
    layerSize: e.layerSize,
    method: e.method,
    target: e.target,
    threshold: e.threshold,
    note: 'rawMap: ReLU(CAM) at layer resolution; map: upsampled to 32x32 (bilinear, align_corners false) and divided by its maximum',
    images: results,
    errors: bad,
  };
  const jsonFile = run.writeGradcamJson(f.out, doc);
  if (f.json) {
    process.stdout.write(`${JSON.stringify({ ...doc, json: jsonFile, images: results.map(({ rawMap: _r, map: _m, ...rest }) => rest) })}\n`);
    return;
  }
  const width = Math.max(4, ...all.map((x) => x.length));
  const lines = [
    `${gradcam.CAM_METHOD_NAMES[e.method]} at ${e.layer} (${e.layerSize}x${e.layerSize}) of ${describeCheckpoint(clf.info.checkpoint)}`,
    `${'file'.padEnd(width)}  P(REAL)  predicted  explains  raw max     triptych`,
    ...results.map(
      (r) => `${r.file.padEnd(width)}  ${r.pReal.toFixed(4).padStart(7)}  ${r.predicted.padEnd(9)}  ${r.target.padEnd(8)}  ${r.rawMax.toExponential(2).padEnd(10)}  ${r.png}`,
    ),
    ...bad.map((b) => `${b.file.padEnd(width)}     -     ERROR (${b.error})`),
    `numbers: ${jsonFile}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function explainSplit(clf: Classifier, f: GradcamFlags, layer: string): Promise<void> {
  const tty = !f.json && process.stderr.isTTY;
  const decodeBar = tty ? data.progressBar(`decode ${f.split}`) : undefined;
  const set = await data.loadSplit(f.data!, { split: f.split, limit: f.limit, onProgress: decodeBar }).finally(() => decodeBar?.stop());
  const camBar = tty ? data.progressBar('grad-cam') : undefined;
  const t0 = Date.now();
  const d = await explainDataset(
    clf.native,
    { images: set.images, labels: set.labels, files: set.files },
    {
      layer,
      method: f.method,
      target: f.target,
      threshold: clf.threshold,
      batchSize: f.batchSize,
      sample: f.sample,
      colormap: f.colormap,
      alpha: f.alpha,
      scale: f.scale,
      onProgress: camBar ? (done, total) => camBar({ done, total, imagesPerSec: done / Math.max(1e-3, (Date.now() - t0) / 1000) }) : undefined,
    },
  ).finally(() => camBar?.stop());
  const summary = await run.writeGradcamFolder(f.out, d, { png: (b) => png(b, f.palette), about: { checkpoint: clf.info.checkpoint, data: f.data, split: f.split } });
  const { files } = summary;
  if (f.json) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return;
  }
  const s = d.classMeanStats;
  const stat = (k: 'REAL' | 'FAKE') =>
    `  predicted ${k}: n=${s[k].count}, centre quarter holds ${(s[k].centreShare * 100).toFixed(1)}% of the mean map, 4-px border ${(s[k].borderShare * 100).toFixed(1)}%, peak at (${s[k].peak.row}, ${s[k].peak.col})`;
  const lines = [
    `${gradcam.CAM_METHOD_NAMES[d.method]} at ${d.layer} (${d.layerSize}x${d.layerSize}) of ${describeCheckpoint(clf.info.checkpoint)} on ${f.split} of ${f.data}`,
    `${d.count} images${d.accuracy === null ? '' : `, accuracy ${(d.accuracy * 100).toFixed(2)}%`}; predicted REAL ${d.predicted.REAL}, FAKE ${d.predicted.FAKE}`,
    'class means (uniform: centre 25%, border 43.8%):',
    stat('REAL'),
    stat('FAKE'),
    `gallery (${d.selection.length} images): ${files.gallery}`,
    `class means: ${files.classMeans}, ${files.classMeansJson}`,
    `summary: ${files.summary}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

export function gradcamCommand(): Command {
  const cmd = new Command('gradcam');
  return cmd
    .description('explain a detector: Grad-CAM / HiResCAM triptychs of images, or a gallery and class-mean maps of a dataset split')
    .argument('[images...]', 'image files (JPEG, PNG, WebP; other sizes are resized to 32x32)')
    .option('-m, --model <runOrCheckpoint>', 'run directory, checkpoint file, or pretrained (default: the weights shipped in the package)')
    .requiredOption('-o, --out <dir>', 'output folder (created)')
    .option('-d, --data <path>', 'CIFAKE zip or folder: explain a split instead of image files')
    .option('--split <name>', 'split of --data', 'test')
    .option('--sample <n>', 'gallery images per group (most confident REAL, most confident FAKE, misclassified)', positiveInt('--sample'), 8)
    .option('--limit <n>', 'with --data: at most N images per class (a seeded subset)', positiveInt('--limit'))
    .addOption(
      new Option('--method <m>', 'gradcam (channel-mean gradients), hirescam (element-wise), gradcampp, xgradcam, layercam or eigencam (see --faithfulness for which to trust)')
        .choices([...gradcam.GRADIENT_CAM_METHODS])
        .default('gradcam'),
    )
    .addOption(new Option('--target <class>', 'class explained: the predicted one, or always real / fake').choices(['pred', 'real', 'fake']).default('pred'))
    .option('--layer <name>', 'layer: conv1..convK (after BN+ReLU, before pooling) or pool1..poolK (default: the last conv block)')
    .addOption(new Option('--colormap <name>', 'heatmap colours').choices([...COLORMAP_NAMES]).default('viridis'))
    .option('--alpha <x>', 'heatmap opacity in the overlay, 0..1', unit('--alpha'), 0.5)
    .option('--threshold <x>', 'decision threshold on P(REAL) (default: the one the model was trained with, else 0.5)', unit('--threshold'))
    .option('--device <d>', 'cpu | cuda | cuda:N | auto', 'cpu')
    .option('--threads <n>', 'CPU threads', threadsArg)
    .option('--batch-size <n>', 'images per native Grad-CAM call', positiveInt('--batch-size'), 256)
    .option('--scale <n>', 'display pixels per image pixel (default 8 for image files, 4 in the gallery)', positiveInt('--scale'))
    .option('--palette', 'write 8-bit palette PNGs (about 3x smaller, e.g. for documentation)')
    .option('--json', 'print a JSON summary on stdout')
    .option('--faithfulness', 'with --data: score every CAM method (and random / centre-prior maps) with ROAD and deletion / insertion (--limit per class, default 50)')
    .option('--methods <list>', `with --faithfulness: comma-separated methods (default all: ${CAM_METHODS.join(', ')})`, methodList)
    .addHelpText(
      'after',
      `
Outputs:
  image files: <out>/<name>.gradcam.png (original | heatmap | overlay, with P(REAL) and the prediction)
               and <out>/gradcam.json (per image: P(REAL), predicted and explained class, raw max,
               the raw layer map and the normalised 32x32 map)
  --data:      <out>/gallery.png (most confident REAL, most confident FAKE, misclassified; wrong
               predictions framed in red), <out>/class-means.png and class-means.json (mean raw map
               of the images predicted REAL vs FAKE over the whole split), <out>/summary.json

Maps are computed in eval mode on the layer's activation A: Grad-CAM = ReLU(sum_k mean(dS/dA_k) A_k),
HiResCAM = ReLU(sum_k dS/dA_k * A_k), with S the logit for REAL and -logit for FAKE.

Examples:
  cifake gradcam --model runs/hoc --out cams photo1.jpg photo2.png
  cifake gradcam --model runs/hoc/best.pt --out cams --method hirescam --target fake --colormap turbo photo.jpg
  cifake gradcam --model runs/hoc --data ~/cifake.zip --split test --sample 8 --out docs/gradcam
  cifake gradcam --model runs/paper-cnn --data ~/cifake.zip --layer conv1 --limit 500 --out cams --json`,
    )
    .action(async (images: string[], f: GradcamFlags) => {
      if (images.length > 0 && f.data) cmd.error('error: give image files or --data, not both');
      if (images.length === 0 && !f.data) cmd.error('error: give image files to explain, or --data PATH for a dataset split');
      const clf = await Classifier.load(f.model, { device: f.device, threads: f.threads, threshold: f.threshold });
      try {
        let layer: string;
        try {
          layer = assertLayer(clf.native, f.layer); // before any decoding
        } catch (e) {
          return cmd.error(`error: --${(e as Error).message}`); // usage: exit 2
        }
        fs.mkdirSync(f.out, { recursive: true });
        if (f.faithfulness && !f.data) return cmd.error('error: --faithfulness needs --data PATH (a split to score the methods on)');
        if (f.faithfulness) await faithfulnessOfSplit(clf, f, layer);
        else if (f.data) await explainSplit(clf, f, layer);
        else await explainFiles(clf, images, f, layer);
      } finally {
        clf.dispose();
      }
    });
}
