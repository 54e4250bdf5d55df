// The page's classifier: decode -> 32x32 RGB -> CHW float32 / 255 -> ONNX (wasm) -> P(REAL).
// window.cifake exposes the same steps to scripts (the browser test drives it).
import * as ort from './ort/ort.wasm.min.mjs';

ort.env.wasm.wasmPaths = new URL('./ort/', import.meta.url).href;
ort.env.wasm.numThreads = 1; // threads need cross-origin isolation, which a plain static host lacks

const SIZE = 32;
const $ = (id) => document.getElementById(id);

async function loadModel() {
  const config = await (await fetch('./model.json')).json();
  const session = await ort.InferenceSession.create('./model.onnx', { executionProviders: ['wasm'] });
  return { session, config };
}

/** Any image blob -> 32x32 RGBA pixels as the canvas draws them (exact for a 32x32 image). */
async function pixels(blob) {
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const canvas = new OffscreenCanvas(SIZE, SIZE);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'medium';
  ctx.drawImage(bitmap, 0, 0, SIZE, SIZE);
  const size = { width: bitmap.width, height: bitmap.height };
  bitmap.close();
  return { rgba: ctx.getImageData(0, 0, SIZE, SIZE).data, ...size };
}

/** RGBA HWC bytes -> the model input: float32 [1,3,32,32], all R, then G, then B, each / 255. */
function toInput(rgba) {
  const plane = SIZE * SIZE;
  const x = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) x[c * plane + i] = rgba[i * 4 + c] / 255;
  return new ort.Tensor('float32', x, [1, 3, SIZE, SIZE]);
}

const ready = loadModel();

async function classify(blob) {
  const { session, config } = await ready;
  const { rgba, width, height } = await pixels(blob);
  const out = await session.run({ input: toInput(rgba) });
  const pReal = out.p_real.data[0];
  return { pReal, logit: out.logit.data[0], label: pReal >= config.threshold ? 'REAL' : 'FAKE', width, height, rgba };
}

async function show(blob) {
  try {
    const r = await classify(blob);
    $('label').textContent = `${r.label}: P(REAL) = ${r.pReal.toFixed(4)}`;
    $('detail').textContent = `${r.width}x${r.height}${r.width === SIZE && r.height === SIZE ? '' : ', resized to 32x32'}`;
    $('preview').getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(r.rgba), SIZE, SIZE), 0, 0);
  } catch (e) {
    $('label').textContent = 'cannot classify this file';
    $('detail').textContent = String(e.message ?? e);
  }
}

const drop = $('drop');
drop.addEventListener('click', () => $('file').click());
$('file').addEventListener('change', (e) => e.target.files[0] && show(e.target.files[0]));
drop.addEventListener('dragover', (e) => (e.preventDefault(), drop.classList.add('over')));
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  if (e.dataTransfer.files[0]) show(e.dataTransfer.files[0]);
});

ready.then(
  ({ config }) => ($('status').textContent = `model: ${config.family}, threshold ${config.threshold}${config.temperature !== 1 ? `, temperature ${config.temperature}` : ''}`),
  (e) => ($('status').textContent = `cannot load the model: ${e.message ?? e}`),
);

window.cifake = {
  ready: ready.then(() => true),
  /** bytes (an ArrayBuffer or a base64 string) of an image file -> { pReal, logit, label } */
  async classifyBytes(bytes, type = 'image/jpeg') {
    const buf = typeof bytes === 'string' ? Uint8Array.from(atob(bytes), (c) => c.charCodeAt(0)) : bytes;
    const { pReal, logit, label } = await classify(new Blob([buf], { type }));
    return { pReal, logit, label };
  },
};
