// cifake report: a tiny real run (generated data, 2 epochs) reported as HTML + PNG, a sweep folder,
// the CLI command, and the page as a person sees it in headless Chromium (skipped without it).
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';

import { reportCommand } from '../bin/commands/report';
import { synthesize } from '../src/data/synth';
import { readLeaderboard, renderChart, robustnessSpec, scoreFileNames, thinCurve, writeReport, type ReportResult } from '../src/report';
import { runRobustness } from '../src/robustness/run';
import { train } from '../src/train/fit';
import { useChromium } from './browser-helpers';
import { TEST_THREADS } from './helpers';

// a finished run is calibrated at the end of training, so it has a reliability diagram too
const RUN_CHARTS = ['learning-curves', 'confusion', 'roc', 'per-class', 'scores', 'reliability'];

/** Share of pixels that are not (near) white: a chart that drew nothing is ~0. */
async function inkShare(png: Buffer | string): Promise<number> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  let ink = 0;
  for (let i = 0; i < data.length; i += info.channels) if (data[i] < 235 || data[i + 1] < 235 || data[i + 2] < 235) ink++;
  return ink / (info.width * info.height);
}

async function expectFigures(r: ReportResult, ids: string[]): Promise<void> {
  expect(r.figures.map((f) => f.id)).to.deep.equal(ids);
  for (const f of r.figures) {
    expect(fs.existsSync(f.png), f.png).to.equal(true);
    expect(path.dirname(f.png)).to.equal(path.dirname(r.html));
    const meta = await sharp(f.png).metadata();
    expect([meta.format, meta.width, meta.height]).to.deep.equal(['png', f.pngWidth, f.pngHeight]);
    expect(Math.abs(f.pngWidth - 2 * f.width), `${f.id} width`).to.be.at.most(1);
    expect(Math.abs(f.pngHeight - 2 * f.height), `${f.id} height`).to.be.at.most(1);
    expect(f.width).to.be.within(150, 1400);
    expect(f.height).to.be.within(150, 900);
    expect(await inkShare(f.png), `${f.id} ink`).to.be.above(0.02);
  }
}

function expectSelfContained(html: string): void {
  expect(html).to.match(/^<!DOCTYPE html>/);
  // every src is a data URI; no stylesheet, script or font from elsewhere
  const srcs = [...html.matchAll(/\ssrc="([^"]*)"/g)].map((m) => m[1]);
  expect(srcs.length).to.be.above(0);
  for (const s of srcs) expect(s.startsWith('data:'), s.slice(0, 40)).to.equal(true);
  expect(html).to.not.match(/<script|<link rel="stylesheet"|@import|url\(http/i);
}

describe('report', function () {
  this.timeout(90_000);
  let tmp: string;
  let runDir: string;
  let sweepDir: string;
  let dataRoot: string;

  before(async function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cifake-report-'));
    const { root } = await synthesize(path.join(tmp, 'data'), { trainPerClass: 50, testPerClass: 30, seed: 7 });
    dataRoot = root;
    const result = await train({
      data: root,
      model: { family: 'lightweight', convFilters: [8, 16], dense: [16] },
      epochs: 2,
      limit: 50,
      batchSize: 16,
      valFraction: 0.2,
      threads: TEST_THREADS,
      device: 'cpu',
      earlyStopping: { patience: 5, restoreBest: true },
      outDir: tmp,
      name: 'run',
    });
    runDir = result.runDir;
    // leaderboard.json as `cifake sweep` writes it: one row with a run directory, others without
    sweepDir = path.join(tmp, 'sweep');
    fs.mkdirSync(sweepDir);
    const row = (trial: string, family: string, parameters: number | null, testAcc: number | null, dir: string | null, status = 'done') => ({
      rank: null,
      trial,
      stage: null,
      status,
      skipped: false,
      params: { 'model.family': family },
      family,
      convFilters: [8, 16],
      dense: [16],
      parameters,
      epochs: 2,
      bestEpoch: 1,
      valAcc: testAcc === null ? null : testAcc - 0.01,
      valAuc: null,
      valF1Real: null,
      testAcc,
      testF1Real: null,
      testAuc: null,
      trainSeconds: 1.5,
      metric: testAcc,
      threads: 1,
      runDir: dir,
      error: status === 'failed' ? 'out of memory' : null,
    });
    fs.writeFileSync(
      path.join(sweepDir, 'leaderboard.json'),
      JSON.stringify({
        sweep: 'sweep',
        sweepDir,
        grid: 'user',
        metric: 'test_acc',
        generatedAt: new Date().toISOString(),
        selection: null,
        counts: { done: 3, failed: 1, interrupted: 0, pending: 0 },
        rows: [
          row('big', 'hoc', 2_400_000, 0.93, null),
          row('small', 'original', 12_000, 0.81, null),
          { ...row('tiny-run', 'lightweight', null, null, runDir) },
          row('broken', 'hoc', null, null, null, 'failed'),
        ],
      }),
    );
  });

  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('renders every Vega-Lite chart to SVG and PNG without warnings', async () => {
    const r = await renderChart({ data: { values: [{ a: 1, b: 2 }, { a: 2, b: 3 }] }, mark: 'line', width: 200, height: 120, encoding: { x: { field: 'a', type: 'quantitative' }, y: { field: 'b', type: 'quantitative' } } });
    expect(r.svg).to.match(/^<svg[^>]*width="\d+"/);
    expect(r.warnings).to.deep.equal([]);
    expect(r.pngWidth).to.equal(Math.round(2 * r.width));
    expect(await inkShare(r.png)).to.be.above(0.01);
    // a long ROC curve keeps its ends and at most ~600 points
    const n = 20_000;
    const pts = thinCurve(Array.from({ length: n }, (_, i) => i / (n - 1)), Array.from({ length: n }, (_, i) => Math.sqrt(i / (n - 1))));
    expect(pts.length).to.be.at.most(600);
    expect(pts[0]).to.deep.equal({ fpr: 0, tpr: 0 });
    expect(pts.at(-1)).to.deep.equal({ fpr: 1, tpr: 1 });
  });

  it('reports a run: computes per-image scores when the run has none, then reuses them', async () => {
    for (const split of ['val', 'test']) for (const f of scoreFileNames(split)) fs.rmSync(path.join(runDir, f), { force: true });
    const out = path.join(tmp, 'out', 'run.html');
    const r = await writeReport(runDir, { out, threads: TEST_THREADS, device: 'cpu' });
    expect(r.kind).to.equal('run');
    expect(r.html).to.equal(out);
    expect(r.scores).to.deep.equal({ val: 'computed', test: 'computed' });
    await expectFigures(r, RUN_CHARTS);
    expect(path.basename(r.figures[0].png)).to.equal('run-learning-curves.png');
    const saved = JSON.parse(fs.readFileSync(path.join(runDir, 'scores-test.json'), 'utf8'));
    expect(saved.labels).to.have.length(60);
    expect(saved.logits).to.have.length(60);
    // recomputed scores agree with metrics.json (else the report says so)
    expect(r.notes.filter((n) => /differ|changed since training/.test(n))).to.deep.equal([]);
    // Grad-CAM gallery and class means computed with the checkpoint, saved where `cifake gradcam` puts them
    expect(r.gradcam.map((f) => path.relative(runDir, f))).to.deep.equal(['gradcam/gallery.png', 'gradcam/class-means.png']);
    const gc = JSON.parse(fs.readFileSync(path.join(runDir, 'gradcam', 'summary.json'), 'utf8'));
    expect([gc.split, gc.count, gc.classMeanStats.REAL.count + gc.classMeanStats.FAKE.count]).to.deep.equal(['test', 60, 60]);
    expect(r.notes.filter((n) => /Grad-CAM/.test(n))).to.deep.equal([]);
    const html = fs.readFileSync(out, 'utf8');
    expectSelfContained(html);
    for (const text of ['Learning curves', 'Confusion matrix', 'ROC curve', 'Grad-CAM at', 'centre quarter', 'Configuration', 'skipped', 'Timing', 'Versions', 'lightweight', 'test accuracy', 'Calibration', 'ECE before', 'Youden threshold'])
      expect(html, text).to.include(text);
    // second report: the scores come from the run directory, default output inside it
    const again = await writeReport(runDir, { device: 'cpu', threads: TEST_THREADS });
    expect(again.html).to.equal(path.resolve(runDir, 'report.html'));
    expect(again.scores).to.deep.equal({ val: 'run', test: 'run' });
    await expectFigures(again, RUN_CHARTS);
  });

  it('embeds the gradcam/ PNGs already in the run directory; --no-gradcam leaves them out', async () => {
    const dir = path.join(runDir, 'gradcam');
    const gallery = await sharp({ create: { width: 96, height: 64, channels: 3, background: { r: 40, g: 40, b: 200 } } }).png().toBuffer();
    fs.writeFileSync(path.join(dir, 'gallery.png'), gallery);
    const r = await writeReport(runDir, { out: path.join(tmp, 'gc', 'report.html'), computeScores: false });
    expect(r.gradcam.map((f) => path.basename(f))).to.deep.equal(['gallery.png', 'class-means.png']);
    const html = fs.readFileSync(r.html, 'utf8');
    expect(html).to.include(`data:image/png;base64,${gallery.toString('base64')}`); // used as is, not recomputed
    expect(html).to.include('data-gradcam="gradcam/class-means.png"');
    expectSelfContained(html);
    fs.rmSync(dir, { recursive: true });
    const without = await writeReport(runDir, { out: path.join(tmp, 'gc', 'report.html'), computeScores: false, gradcam: false });
    expect(without.gradcam).to.deep.equal([]);
    expect(without.notes.some((n) => /no Grad-CAM figures/.test(n))).to.equal(true);
    expect(fs.existsSync(dir)).to.equal(false);
  });

  it('charts the robustness.json of `cifake robustness` (AUROC vs strength per perturbation) and tables every row', async () => {
    const cal = JSON.parse(fs.readFileSync(path.join(runDir, 'calibration.json'), 'utf8'));
    const r0 = await runRobustness(runDir, { data: dataRoot, suite: ['jpeg:75', 'jpeg:30', 'blur:1', 'hflip', 'resize:16+jpeg:75'], device: 'cpu', threads: TEST_THREADS });
    expect(r0.savedTo).to.equal(path.join(runDir, 'robustness.json'));
    expect(r0.temperature).to.equal(cal.temperature); // the run's fitted temperature is applied
    try {
      const r = await writeReport(runDir, { out: path.join(tmp, 'robust', 'report.html'), computeScores: false, gradcam: false });
      await expectFigures(r, [...RUN_CHARTS, 'robustness']);
      const html = fs.readFileSync(r.html, 'utf8');
      for (const spec of ['jpeg:30', 'blur:1', 'hflip', 'resize:16+jpeg:75']) expect(html, spec).to.include(`<code>${spec}</code>`);
      expect(html).to.match(/Flip-consistency: \d+\.\d+%/);
      // the chart draws the single-step perturbations that have a strength: jpeg (2 points) and blur
      const spec = robustnessSpec(r0.rows) as unknown as { data: { values: { perturbation: string }[] } };
      expect(spec.data.values.map((v) => v.perturbation)).to.deep.equal(['jpeg:75', 'jpeg:30', 'blur:1']);
      expect(() => robustnessSpec(r0.rows.filter((x) => x.family === 'clean' || x.family === 'hflip'))).to.throw(/no single-step perturbation/);
    } finally {
      fs.rmSync(path.join(runDir, 'robustness.json'));
    }
  });

  it('leaves out, with a note, a calibration.json or robustness.json it cannot read', async () => {
    const calFile = path.join(runDir, 'calibration.json');
    const saved = fs.readFileSync(calFile);
    try {
      fs.writeFileSync(calFile, JSON.stringify({ temperature: 'warm' }));
      fs.writeFileSync(path.join(runDir, 'robustness.json'), JSON.stringify({ rows: 3 }));
      const r = await writeReport(runDir, { out: path.join(tmp, 'bad-extras', 'report.html'), computeScores: false, gradcam: false });
      await expectFigures(r, RUN_CHARTS.filter((id) => id !== 'reliability'));
      expect(r.notes.some((n) => n.includes('calibration.json') && /left out/.test(n))).to.equal(true);
      expect(r.notes.some((n) => n.includes('robustness.json') && /left out/.test(n))).to.equal(true);
    } finally {
      fs.writeFileSync(calFile, saved);
      fs.rmSync(path.join(runDir, 'robustness.json'), { force: true });
    }
  });

  it('reports a run without metrics.json (still training) from its history', async () => {
    const partial = path.join(tmp, 'partial');
    fs.mkdirSync(partial);
    for (const f of ['config.json', 'data.json', 'history.jsonl']) fs.copyFileSync(path.join(runDir, f), path.join(partial, f));
    const r = await writeReport(partial);
    await expectFigures(r, ['learning-curves']);
    expect(r.notes.some((n) => /no metrics\.json/.test(n))).to.equal(true);
  });

  it('reports a sweep folder: leaderboard table and accuracy vs parameters', async () => {
    const board = readLeaderboard(sweepDir);
    expect(board?.rows.map((r) => [r.name, r.parameters !== null, r.testAccuracy !== null])).to.deep.equal([
      ['big', true, true],
      ['small', true, true],
      ['tiny-run', true, true], // filled in from the run's metrics.json
      ['broken', false, false],
    ]);
    const r = await writeReport(sweepDir);
    expect(r.kind).to.equal('sweep');
    await expectFigures(r, ['sweep']);
    expect(r.notes.some((n) => /1 of 4 runs are not in the chart/.test(n))).to.equal(true);
    const html = fs.readFileSync(r.html, 'utf8');
    expectSelfContained(html);
    for (const text of ['Leaderboard', 'tiny-run', 'out of memory', '2,400,000']) expect(html, text).to.include(text);
    expect(html).to.include(`href="${path.relative(sweepDir, path.join(runDir, 'report.html'))}"`);
  });

  it('cifake report: writes the report where --out says, errors name the directory', async () => {
    const out = path.join(tmp, 'cli', 'r.html');
    const write = process.stdout.write;
    let printed = '';
    process.stdout.write = ((s: string) => {
      printed += s;
      return true;
    }) as typeof process.stdout.write;
    try {
      await reportCommand().exitOverride().parseAsync(['node', 'report', sweepDir, '--out', out, '--no-scores', '--no-gradcam', '--json']);
    } finally {
      process.stdout.write = write;
    }
    const res = JSON.parse(printed) as ReportResult;
    expect([res.kind, res.html, fs.existsSync(out)]).to.deep.equal(['sweep', out, true]);
    expect(res.figures.map((f) => [f.id, path.basename(f.png)])).to.deep.equal([['sweep', 'r-sweep.png']]);
    let err: Error | null = null;
    await reportCommand()
      .exitOverride()
      .parseAsync(['node', 'report', path.join(tmp, 'nope')])
      .catch((e: Error) => (err = e));
    expect(String(err)).to.include(path.join(tmp, 'nope'));
    err = null;
    await writeReport(path.join(tmp, 'data')).catch((e: Error) => (err = e));
    expect(String(err)).to.match(/not a run directory .* nor a sweep folder/);
  });

  describe('in headless Chromium', function () {
    const browser = useChromium();

    async function look(html: string, expected: string[], shot?: string): Promise<void> {
      const page = await browser().newPage({ viewport: { width: 1240, height: 900 } });
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('requestfailed', (q) => problems.push(`failed request: ${q.url().slice(0, 80)}`));
      page.on('request', (q) => {
        const url = q.url();
        if (!url.startsWith('data:') && url !== `file://${html}`) problems.push(`request: ${url.slice(0, 80)}`);
      });
      try {
        await page.goto(`file://${html}`, { waitUntil: 'load' });
        const charts = await page.$$eval('figure.chart', (figs) =>
          figs.map((f) => {
            const img = f.querySelector('img') as HTMLImageElement;
            const box = img.getBoundingClientRect();
            return {
              id: f.getAttribute('data-chart'),
              width: Number(f.getAttribute('data-width')),
              height: Number(f.getAttribute('data-height')),
              complete: img.complete,
              naturalWidth: img.naturalWidth,
              naturalHeight: img.naturalHeight,
              shownWidth: box.width,
              shownHeight: box.height,
              svg: img.src.startsWith('data:image/svg+xml;base64,') ? atob(img.src.slice(26)).length : 0,
            };
          }),
        );
        expect(charts.map((c) => c.id)).to.deep.equal(expected);
        for (const c of charts) {
          expect(c.complete, `${c.id} loaded`).to.equal(true);
          expect(c.svg, `${c.id} svg`).to.be.above(1000);
          expect([c.naturalWidth, c.naturalHeight], `${c.id} natural size`).to.deep.equal([c.width, c.height]);
          expect([Math.round(c.shownWidth), Math.round(c.shownHeight)], `${c.id} shown size`).to.deep.equal([c.width, c.height]);
        }
        // what the browser drew for each chart has ink (an SVG that failed to draw is blank): one
        // screenshot of the page, cut at each chart's box
        const shotFile = shot ?? path.join(tmp, `shot-${path.basename(html)}.png`);
        await page.screenshot({ path: shotFile, fullPage: true });
        const boxes = await page.$$eval('figure.chart img', (els) =>
          els.map((e) => {
            const b = e.getBoundingClientRect();
            return { left: Math.round(b.left + window.scrollX), top: Math.round(b.top + window.scrollY), width: Math.round(b.width), height: Math.round(b.height) };
          }),
        );
        for (let i = 0; i < boxes.length; i++) {
          const cut = await sharp(shotFile).extract(boxes[i]).png().toBuffer();
          expect(await inkShare(cut), `${charts[i].id} drawn`).to.be.above(0.02);
        }
        const gradcams = await page.$$eval('figure.gradcam img', (els) => els.map((e) => (e as HTMLImageElement).naturalWidth));
        for (const w of gradcams) expect(w).to.be.above(0);
        expect(problems).to.deep.equal([]);
      } finally {
        await page.close();
      }
    }

    it('shows the run report with every chart drawn, no console error and no request out', async () => {
      const r = await writeReport(runDir, { out: path.join(tmp, 'browser', 'report.html'), computeScores: false });
      const shot = path.join(tmp, 'browser', 'screenshot.png');
      await look(r.html, RUN_CHARTS, shot);
      const meta = await sharp(shot).metadata();
      expect(meta.width).to.equal(1240);
      expect(meta.height).to.be.above(2000);
    });

    it('shows the sweep report', async () => {
      const r = await writeReport(sweepDir, { out: path.join(tmp, 'browser', 'sweep.html') });
      await look(r.html, ['sweep']);
    });
  });
});
