import type { RgbaFrame } from '../../ingest/frame.js';
import { unit, type DetectedFace, type FaceFinder, type FivePoints } from './face.js';

/**
 * Faces in still images. A photo fed as a clip (the same frame T times) is detected
 * once. Tight, small face crops (FER2013-style 48x48) defeat the face detector, which
 * wants some head and background around a face: when nothing is found the image is
 * retried centred on a grey canvas twice its size, scaled up to at least `minSide`,
 * and the landmarks are mapped back to the original image.
 */
export class StillFaces implements FaceFinder {
  private last: Uint8Array | null = null;
  private faces: DetectedFace[] = [];
  retried = 0;

  constructor(
    private readonly inner: FaceFinder,
    private readonly minSide = 256,
  ) {}

  async detect(frame: RgbaFrame, ts: number): Promise<DetectedFace[]> {
    if (frame.data === this.last) return this.faces;
    this.last = frame.data;
    this.faces = await this.inner.detect(frame, ts);
    if (!this.faces.length) {
      this.retried++;
      this.faces = await this.padded(frame, ts);
    }
    return this.faces;
  }

  setActions(on: boolean): Promise<void> {
    return this.inner.setActions(on);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private async padded(frame: RgbaFrame, ts: number): Promise<DetectedFace[]> {
    const { width: w, height: h } = frame;
    const pad = Math.round(Math.max(w, h) / 2);
    const s = Math.max(1, this.minSide / (Math.max(w, h) + 2 * pad));
    const W = Math.round((w + 2 * pad) * s);
    const H = Math.round((h + 2 * pad) * s);
    const canvas = scaleOnto(frame, W, H, pad, s);
    const found = await this.inner.detect({ ...frame, ...canvas }, ts + 0.5);
    const back = (v: number): number => (v + 0.5) / s - 0.5 - pad;
    return found.map((f) => {
      const x0 = unit(((f.box.x * W) / s - pad) / w);
      const y0 = unit(((f.box.y * H) / s - pad) / h);
      const x1 = unit((((f.box.x + f.box.w) * W) / s - pad) / w);
      const y1 = unit((((f.box.y + f.box.h) * H) / s - pad) / h);
      return { box: { x: x0, y: y0, w: x1 - x0, h: y1 - y0 }, points: f.points.map(([x, y]) => [back(x), back(y)]) as FivePoints };
    });
  }
}

/** The frame, bilinearly scaled by s, centred on a mid-grey W x H canvas with `pad` source pixels around it. */
function scaleOnto(src: RgbaFrame, W: number, H: number, pad: number, s: number): RgbaFrame {
  const out = new Uint8Array(W * H * 4).fill(128);
  const { data, width: w, height: h } = src;
  for (let Y = 0; Y < H; Y++) {
    const y = (Y + 0.5) / s - 0.5 - pad;
    if (y < -0.5 || y > h - 0.5) continue;
    const yc = Math.min(h - 1, Math.max(0, y));
    const y0 = Math.floor(yc),
      y1 = Math.min(h - 1, y0 + 1),
      fy = yc - y0;
    for (let X = 0; X < W; X++) {
      const x = (X + 0.5) / s - 0.5 - pad;
      if (x < -0.5 || x > w - 0.5) continue;
      const xc = Math.min(w - 1, Math.max(0, x));
      const x0 = Math.floor(xc),
        x1 = Math.min(w - 1, x0 + 1),
        fx = xc - x0;
      const o = (Y * W + X) * 4;
      for (let c = 0; c < 3; c++) {
        const a = data[(y0 * w + x0) * 4 + c]! * (1 - fx) + data[(y0 * w + x1) * 4 + c]! * fx;
        const b = data[(y1 * w + x0) * 4 + c]! * (1 - fx) + data[(y1 * w + x1) * 4 + c]! * fx;
        out[o + c] = a * (1 - fy) + b * fy;
      }
      out[o + 3] = 255;
    }
  }
  return { data: out, width: W, height: H };
}
