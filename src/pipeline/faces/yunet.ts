import { readFile } from 'node:fs/promises';
import ort from 'onnxruntime-node';
import type { RgbaFrame } from '../../ingest/frame.js';
import { iou, unit, type DetectedFace, type FaceBox, type FivePoints } from './face.js';

/**
 * YuNet (libfacedetection): a small face detector whose five keypoints (eye
 * centres, nose tip, mouth corners) are the same five points the alignment uses, so it
 * can stand in for MediaPipe's 478-point mesh at a fraction of its cost (`npm run bench`:
 * the whole path's CPU per face-frame halved). At a 640 px input it also finds the faces too small
 * for MediaPipe's short-range detector (a kiosk user 1-3 m away, 24-40 px high).
 * The frame is scaled so its longer side is `size` and padded to multiples of 32 (the
 * network's coarsest stride), which the dynamic-shape export accepts.
 */
const STRIDES = [8, 16, 32] as const;

export interface YuNetOptions {
  /** Longer side of the network input in pixels (320: near faces, fast; 640: small faces). */
  size: number;
  /** Scale a frame smaller than `size` up to it (small faces), or keep it at its own size (near ones). */
  upscale: boolean;
  scoreThreshold: number;
  nmsIou: number;
  maxFaces: number;
}

export class YuNetFaces {
  /** Frames it was asked about, and how many of them it found a face in (for tests and /healthz). */
  calls = 0;
  hits = 0;

  private constructor(
    private readonly shared: Shared,
    private readonly o: YuNetOptions,
  ) {}

  /**
   * A detector on this thread's session for the model. The session and its input
   * buffers are shared by every stream on the thread and kept until `releaseSessions`:
   * a session and megabytes of input per stream, made and dropped as participants came
   * and went, left the thread's malloc arena fragmented and the process's RSS growing
   * for as long as it ran (bench:memory).
   */
  static async create(modelPath: string, o: YuNetOptions): Promise<YuNetFaces> {
    if (o.size % 32) throw new Error(`YuNet input size must be a multiple of 32, got ${o.size}`);
    let shared = sessions.get(modelPath);
    if (!shared) {
      shared = openSession(modelPath).then((session) => ({ session, busy: Promise.resolve(), inputs: new Map() }));
      sessions.set(modelPath, shared);
      // a model that failed to open is tried again by the next stream
      shared.catch(() => sessions.delete(modelPath));
    }
    return new YuNetFaces(await shared, o);
  }

  /** Releases this thread's sessions (the thread or the pipeline is ending). */
  static async releaseSessions(): Promise<void> {
    const all = [...sessions.values()];
    sessions.clear();
    await Promise.all(all.map(async (s) => (await s.catch(() => null))?.session.release()));
  }

  /** A detector on the same session at another input size (the export takes any; a multiple of 32). */
  resized(size: number, upscale: boolean): YuNetFaces {
    return new YuNetFaces(this.shared, { ...this.o, size, upscale });
  }

  get size(): number {
    return this.o.size;
  }

  /** One frame at a time on the thread's session: its input buffers are reused frame after frame. */
  detect(frame: RgbaFrame): Promise<DetectedFace[]> {
    const run = this.shared.busy.then(() => this.run(frame));
    this.shared.busy = run.catch(() => undefined);
    return run;
  }

  private async run(frame: RgbaFrame): Promise<DetectedFace[]> {
    const { width: w, height: h, data } = frame;
    // scale the longer side to `size` (or keep a smaller frame's own), pad both to multiples of 32
    const k = Math.min(this.o.size / Math.max(w, h), this.o.upscale ? Infinity : 1);
    const sw = Math.min(this.o.size, Math.round(w * k));
    const sh = Math.min(this.o.size, Math.round(h * k));
    const iw = Math.ceil(sw / 32) * 32;
    const ih = Math.ceil(sh / 32) * 32;
    const plane = iw * ih;
    const { input, cols } = inputFor(this.shared, w, h, iw, ih, sw, k);
    // nearest-neighbour resample into BGR planes, 0..255 as the model was trained
    for (let y = 0; y < sh; y++) {
      const row = Math.min(h - 1, Math.floor((y + 0.5) / k)) * w * 4;
      let d = y * iw;
      for (let x = 0; x < sw; x++, d++) {
        const s = row + cols[x]!;
        input[d] = data[s + 2]!;
        input[plane + d] = data[s + 1]!;
        input[2 * plane + d] = data[s]!;
      }
    }
    const out = await this.shared.session.run({ input: new ort.Tensor('float32', input, [1, 3, ih, iw]) });
    const found: Array<{ score: number; x0: number; y0: number; x1: number; y1: number; kps: number[] }> = [];
    for (const s of STRIDES) {
      const cls = out[`cls_${s}`]!.data as Float32Array;
      const obj = out[`obj_${s}`]!.data as Float32Array;
      const box = out[`bbox_${s}`]!.data as Float32Array;
      const kps = out[`kps_${s}`]!.data as Float32Array;
      const gridCols = iw / s;
      for (let i = 0; i < cls.length; i++) {
        const score = Math.sqrt(Math.min(1, Math.max(0, cls[i]!)) * Math.min(1, Math.max(0, obj[i]!)));
        if (score < this.o.scoreThreshold) continue;
        const c = i % gridCols;
        const r = Math.floor(i / gridCols);
        const cx = (c + box[i * 4]!) * s;
        const cy = (r + box[i * 4 + 1]!) * s;
        const bw = Math.exp(box[i * 4 + 2]!) * s;
        const bh = Math.exp(box[i * 4 + 3]!) * s;
        const pts: number[] = [];
        for (let p = 0; p < 5; p++) pts.push(((kps[i * 10 + 2 * p]! + c) * s) / k - 0.5, ((kps[i * 10 + 2 * p + 1]! + r) * s) / k - 0.5);
        found.push({ score, x0: (cx - bw / 2) / k, y0: (cy - bh / 2) / k, x1: (cx + bw / 2) / k, y1: (cy + bh / 2) / k, kps: pts });
      }
    }
    this.calls++;
    if (found.length) this.hits++;
    return nms(found, this.o.nmsIou)
      .slice(0, this.o.maxFaces)
      .map((f) => {
        const [x0, y0, x1, y1] = [unit(f.x0 / w), unit(f.y0 / h), unit(f.x1 / w), unit(f.y1 / h)];
        const p = f.kps;
        // YuNet: the person's right eye (image left), left eye, nose, right mouth corner, left mouth corner
        const points: FivePoints = [
          [p[0]!, p[1]!],
          [p[2]!, p[3]!],
          [p[4]!, p[5]!],
          [p[6]!, p[7]!],
          [p[8]!, p[9]!],
        ];
        return { box: { x: x0, y: y0, w: x1 - x0, h: y1 - y0 }, points, score: f.score };
      });
  }
}

/** A thread's session for one model, the one frame it runs at a time, and input buffers by shape. */
interface Shared {
  session: ort.InferenceSession;
  busy: Promise<unknown>;
  inputs: Map<string, { input: Float32Array; cols: Int32Array }>;
}

const sessions = new Map<string, Promise<Shared>>();

/** Frame sizes whose input buffers a thread keeps (a few: near and small faces of the sizes streams send). */
const KEPT_INPUTS = 8;

/**
 * The input buffer for this frame width and network input, made once per shape: the
 * padding stays zero while the shape does, so only the picture is rewritten.
 */
function inputFor(
  s: Shared,
  w: number,
  h: number,
  iw: number,
  ih: number,
  sw: number,
  k: number,
): { input: Float32Array; cols: Int32Array } {
  const key = `${w}x${h}:${iw}x${ih}:${sw}`;
  let b = s.inputs.get(key);
  if (b) {
    // most recently used last: the first one is the one to drop
    s.inputs.delete(key);
  } else {
    if (s.inputs.size >= KEPT_INPUTS) s.inputs.delete(s.inputs.keys().next().value!);
    b = {
      input: new Float32Array(3 * iw * ih),
      // source byte offset of each input column
      cols: Int32Array.from({ length: sw }, (_, x) => Math.min(w - 1, Math.floor((x + 0.5) / k)) * 4),
    };
  }
  s.inputs.set(key, b);
  return b;
}

async function openSession(modelPath: string): Promise<ort.InferenceSession> {
  const bytes = await readFile(modelPath).catch((e: Error) => {
    throw new Error(`face detector not readable at ${modelPath}: ${e.message}`);
  });
  return ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
}

/** Highest score first; a box overlapping a kept one by more than `iouMax` is dropped. */
function nms<T extends { score: number; x0: number; y0: number; x1: number; y1: number }>(items: T[], iouMax: number): T[] {
  const box = (a: T): FaceBox => ({ x: a.x0, y: a.y0, w: a.x1 - a.x0, h: a.y1 - a.y0 });
  const kept: T[] = [];
  for (const a of [...items].sort((p, q) => q.score - p.score)) {
    if (kept.every((b) => iou(box(a), box(b)) <= iouMax)) kept.push(a);
  }
  return kept;
}
