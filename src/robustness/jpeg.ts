// JPEG re-saving of planar uint8 batches: the addon's libjpeg round trip (native/jpeg_encode.h) when
// the addon was built with libjpeg, else sharp image by image (slower, same libjpeg defaults).
import sharp from 'sharp';

import { loadNative } from '../native';

async function sharpRoundTrip(images: Uint8Array, qualities: Uint8Array, size: number): Promise<Uint8Array> {
  const per = 3 * size * size;
  const out = new Uint8Array(images);
  const hwc = Buffer.alloc(per);
  for (let i = 0; i < qualities.length; i++) {
    if (!qualities[i]) continue;
    for (let c = 0; c < 3; c++) for (let p = 0; p < size * size; p++) hwc[p * 3 + c] = images[i * per + c * size * size + p];
    const jpeg = await sharp(hwc, { raw: { width: size, height: size, channels: 3 } }).jpeg({ quality: qualities[i], chromaSubsampling: '4:2:0' }).toBuffer();
    const back = await sharp(jpeg).removeAlpha().raw().toBuffer();
    for (let c = 0; c < 3; c++) for (let p = 0; p < size * size; p++) out[i * per + c * size * size + p] = back[p * 3 + c];
  }
  return out;
}

/** Re-encodes image i at qualities[i] (1..100; 0 leaves it unchanged) and decodes it back. */
export async function jpegRoundTrip(images: Uint8Array, qualities: Uint8Array, size = 32): Promise<Uint8Array> {
  const native = loadNative();
  if (native.jpegRoundTrip) return native.jpegRoundTrip(images, qualities, size);
  return sharpRoundTrip(images, qualities, size);
}
