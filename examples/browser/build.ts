// Builds the static browser demo: the page, onnxruntime-web's wasm backend files (from
// node_modules, no CDN) and the exported ONNX model, into one folder any static server can host.
//   npx tsx examples/browser/build.ts [--model RUN|CKPT] [--out DIR]   (default out: examples/browser/dist)
import fs from 'node:fs';
import path from 'node:path';

import { exportModel } from '../../src/export';
import { CifakeModel } from '../../src/model';
import { resolveModelTarget } from '../../src/pretrained';
import { resolveCheckpoint } from '../../src/run';

const HERE = __dirname;
const ORT_FILES = ['ort.wasm.min.mjs', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'];

export async function buildBrowserDemo(opts: { model?: string; out: string }): Promise<{ out: string; model: string }> {
  const ortDist = path.dirname(require.resolve('onnxruntime-web')); // its dist/ (the package exports no package.json)
  fs.mkdirSync(path.join(opts.out, 'ort'), { recursive: true });
  for (const f of ['index.html', 'app.mjs']) fs.copyFileSync(path.join(HERE, f), path.join(opts.out, f));
  for (const f of ORT_FILES) {
    const src = path.join(ortDist, f);
    if (!fs.existsSync(src)) throw new Error(`onnxruntime-web: ${src} not found (npm install onnxruntime-web)`);
    fs.copyFileSync(src, path.join(opts.out, 'ort', f));
  }
  const checkpoint = resolveCheckpoint(resolveModelTarget(opts.model));
  const r = await exportModel({ model: checkpoint, format: 'onnx', out: path.join(opts.out, 'model.onnx') });
  const meta = CifakeModel.readMeta(checkpoint);
  fs.writeFileSync(
    path.join(opts.out, 'model.json'),
    `${JSON.stringify({ family: r.spec.family, spec: r.spec, threshold: r.threshold, temperature: r.temperature, classNames: meta.classNames ?? ['FAKE', 'REAL'], source: path.basename(checkpoint) }, null, 2)}\n`,
  );
  return { out: opts.out, model: r.file };
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  buildBrowserDemo({ model: flag('--model'), out: flag('--out') ?? path.join(HERE, 'dist') }).then(
    (r) => console.log(`${r.out}: serve it with any static server, e.g. npx http-server ${r.out} (model ${r.model})`),
    (e: Error) => {
      console.error(`build: ${e.message}`);
      process.exitCode = 1;
    },
  );
}
