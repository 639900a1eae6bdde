import type { RgbaFrame } from '../ingest/frame.js';
import type { Preprocess } from '../model/metadata.js';

/** Maps model-input pixel (u, v) to frame pixel: x = a*u - b*v + tx, y = b*u + a*v + ty. */
export interface Similarity {
  a: number;
  b: number;
  tx: number;
  ty: number;
}

/**
 * Least-squares similarity taking the template onto the detected points, so that each
 * output pixel can be pulled straight from the frame (no intermediate crop).
 */
export function templateToFrame(
  points: ReadonlyArray<readonly [number, number]>,
  template: ReadonlyArray<readonly [number, number]>,
): Similarity {
  const n = Math.min(points.length, template.length);
  let mu = 0,
    mv = 0,
    mx = 0,
    my = 0;
  for (let i = 0; i < n; i++) {
    mu += template[i]![0];
    mv += template[i]![1];
    mx += points[i]![0];
    my += points[i]![1];
  }
  mu /= n;
  mv /= n;
  mx /= n;
  my /= n;
  let num_a = 0,
    num_b = 0,
    den = 0;
  for (let i = 0; i < n; i++) {
    const u = template[i]![0] - mu,
      v = template[i]![1] - mv;
    const x = points[i]![0] - mx,
      y = points[i]![1] - my;
    num_a += u * x + v * y;
    num_b += u * y - v * x;
    den += u * u + v * v;
  }
  const a = num_a / den,
    b = num_b / den;
  return { a, b, tx: mx - a * mu + b * mv, ty: my - b * mu - a * mv };
}

/** An already-aligned square crop of size w x h resized onto the model input (the training framing). */
export function cropToInput(w: number, h: number, outW: number, outH: number): Similarity {
  // pixel centres at integers on both sides: x = (u + 0.5) * w / outW - 0.5
  const s = w / outW;
  const sy = h / outH;
  if (Math.abs(s - sy) > 1e-6) throw new Error(`aligned crops must be square, got ${w}x${h}`);
  return { a: s, b: 0, tx: 0.5 * s - 0.5, ty: 0.5 * sy - 0.5 };
}

/**
 * Bilinear sample of the frame through `t` into `out` at `offset`, in the contract's
 * colour mode, scaled to [0,1] and normalised. Edge pixels are replicated. `mirror`
 * writes the face's mirror image instead (the same warp, left and right swapped).
 */
export function warpToTensor(frame: RgbaFrame, t: Similarity, pre: Preprocess, out: Float32Array, offset: number, mirror = false): void {
  const { width: W, height: H } = pre.inputSize;
  const { data, width: fw, height: fh } = frame;
  const grey = pre.colour === 'grey';
  const [wr, wg, wb] = pre.lumaWeights;
  const scale = 1 / (255 * pre.std);
  const bias = -pre.mean / pre.std;
  const plane = W * H;
  for (let v = 0; v < H; v++) {
    for (let u = 0; u < W; u++) {
      // the mirror image: input column u samples where column W-1-u would
      const m = mirror ? W - 1 - u : u;
      let x = t.a * m - t.b * v + t.tx;
      let y = t.b * m + t.a * v + t.ty;
      x = x < 0 ? 0 : x > fw - 1 ? fw - 1 : x;
      y = y < 0 ? 0 : y > fh - 1 ? fh - 1 : y;
      const x0 = Math.floor(x),
        y0 = Math.floor(y);
      const x1 = x0 + 1 < fw ? x0 + 1 : x0,
        y1 = y0 + 1 < fh ? y0 + 1 : y0;
      const fx = x - x0,
        fy = y - y0;
      const w00 = (1 - fx) * (1 - fy),
        w10 = fx * (1 - fy),
        w01 = (1 - fx) * fy,
        w11 = fx * fy;
      const p00 = (y0 * fw + x0) * 4,
        p10 = (y0 * fw + x1) * 4,
        p01 = (y1 * fw + x0) * 4,
        p11 = (y1 * fw + x1) * 4;
      const r = data[p00]! * w00 + data[p10]! * w10 + data[p01]! * w01 + data[p11]! * w11;
      const g = data[p00 + 1]! * w00 + data[p10 + 1]! * w10 + data[p01 + 1]! * w01 + data[p11 + 1]! * w11;
      const b = data[p00 + 2]! * w00 + data[p10 + 2]! * w10 + data[p01 + 2]! * w01 + data[p11 + 2]! * w11;
      const i = offset + v * W + u;
      if (grey) {
        out[i] = (wr * r + wg * g + wb * b) * scale + bias;
      } else {
        out[i] = r * scale + bias;
        out[i + plane] = g * scale + bias;
        out[i + 2 * plane] = b * scale + bias;
      }
    }
  }
}

/**
 * `base` after a small similarity about the input centre (rotation in degrees, scale,
 * shift in input pixels): input pixel u samples base(c + s R (u - c) + d). The training
 * side (training/arpgnet/still_views.py) applies the same view with affine_grid.
 */
export function withView(base: Similarity, view: readonly [number, number, number, number], width: number, height: number): Similarity {
  const [deg, s, dx, dy] = view;
  const rad = (deg * Math.PI) / 180;
  const p = s * Math.cos(rad);
  const q = s * Math.sin(rad);
  const cx = (width - 1) / 2;
  const cy = (height - 1) / 2;
  const e = cx - p * cx + q * cy + dx;
  const f = cy - q * cx - p * cy + dy;
  const { a, b, tx, ty } = base;
  return { a: a * p - b * q, b: b * p + a * q, tx: a * e - b * f + tx, ty: b * e + a * f + ty };
}
