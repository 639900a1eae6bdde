import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import type { RgbaFrame } from './frame.js';

/** Extensions decoded in-process; evaluation of a 3,589-image folder must not start a program per image. */
export const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg']);

/** One still image as RGBA, decoded in this process; a file that is not a readable image throws naming it. */
export function decodeImage(path: string): RgbaFrame {
  const ext = extname(path).toLowerCase();
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`${path}: not readable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
  try {
    if (ext === '.png') {
      const png = PNG.sync.read(bytes);
      return { data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.length), width: png.width, height: png.height };
    }
    if (ext === '.jpg' || ext === '.jpeg') {
      const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 256 });
      return { data: img.data, width: img.width, height: img.height };
    }
  } catch (e) {
    throw new Error(`${path}: not a readable ${ext.slice(1).toUpperCase()} image (${(e as Error).message})`, { cause: e });
  }
  throw new Error(`${path}: unsupported image type '${ext}' (supported: ${[...IMAGE_EXT].join(', ')})`);
}
