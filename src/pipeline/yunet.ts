import { readFile } from 'node:fs/promises';
import ort from 'onnxruntime-node';
import type { RgbaFrame } from '../ingest/frame.js';
import type { DetectedFace, FaceBox, FivePoints } from './landmarker.js';
import { iou } from './tracker.js';

/**
 * Faces too small for MediaPipe's short-range detector (a kiosk user 1-3 m away is
 * 24-40 px high at the analysis size). YuNet (libfacedetection) finds them on the
 * whole frame, letterboxed into its 640x640 input, and its five keypoints (eye centres,
 * nose tip, mouth corners) are the same five points the alignment uses.
 */
const SIZE = 640;
const STRIDES = [8, 16, 32] as const;

export interface SmallFaceOptions {
  scoreThreshold: number;
  nmsIou: number;
  maxFaces: number;
}

export class YuNetFaces {
  /** Frames it was asked about, and how many of them it found a face in (for tests and /healthz). */
  calls = 0;
  hits = 0;

  private readonly input = new Float32Array(3 * SIZE * SIZE);
  /** One frame at a time: the streams that fall back here share the session and its input buffer. */
  private busy: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly o: SmallFaceOptions,
  ) {}

  static async create(modelPath: string, o: SmallFaceOptions): Promise<YuNetFaces> {
    const bytes = await readFile(modelPath).catch((e: Error) => {
      throw new Error(`small-face detector not readable at ${modelPath}: ${e.message}`);
    });
    const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
    return new YuNetFaces(session, o);
  }

  detect(frame: RgbaFrame): Promise<DetectedFace[]> {
    const run = this.busy.then(() => this.run(frame));
    this.busy = run.catch(() => undefined);
    return run;
  }

  private async run(frame: RgbaFrame): Promise<DetectedFace[]> {
    const { width: w, height: h, data } = frame;
    const k = SIZE / Math.max(w, h); // letterbox: scale the longer side to 640, pad the rest
    const sw = Math.round(w * k);
    const sh = Math.round(h * k);
    const plane = SIZE * SIZE;
    this.input.fill(0);
    // nearest-neighbour resample into BGR planes, 0..255 as the model was trained
    for (let y = 0; y < sh; y++) {
      const sy = Math.min(h - 1, Math.floor((y + 0.5) / k));
      for (let x = 0; x < sw; x++) {
        const s = (sy * w + Math.min(w - 1, Math.floor((x + 0.5) / k))) * 4;
        const d = y * SIZE + x;
        this.input[d] = data[s + 2]!;
        this.input[plane + d] = data[s + 1]!;
        this.input[2 * plane + d] = data[s]!;
      }
    }
    const out = await this.session.run({ input: new ort.Tensor('float32', this.input, [1, 3, SIZE, SIZE]) });
    const found: Array<{ score: number; x0: number; y0: number; x1: number; y1: number; kps: number[] }> = [];
    for (const s of STRIDES) {
      const cls = out[`cls_${s}`]!.data as Float32Array;
      const obj = out[`obj_${s}`]!.data as Float32Array;
      const box = out[`bbox_${s}`]!.data as Float32Array;
      const kps = out[`kps_${s}`]!.data as Float32Array;
      const cols = SIZE / s;
      for (let i = 0; i < cls.length; i++) {
        const score = Math.sqrt(Math.min(1, Math.max(0, cls[i]!)) * Math.min(1, Math.max(0, obj[i]!)));
        if (score < this.o.scoreThreshold) continue;
        const c = i % cols;
        const r = Math.floor(i / cols);
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
        const clamp = (v: number): number => Math.min(1, Math.max(0, v));
        const [x0, y0, x1, y1] = [clamp(f.x0 / w), clamp(f.y0 / h), clamp(f.x1 / w), clamp(f.y1 / h)];
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

  async close(): Promise<void> {
    await this.session.release();
  }
}

/** MediaPipe first; where it finds no face, YuNet on the whole frame (near faces pay nothing extra). */
export function withSmallFaces(
  primary: { detect(frame: RgbaFrame, ts: number): DetectedFace[] | Promise<DetectedFace[]> },
  small: YuNetFaces,
): { detect(frame: RgbaFrame, ts: number): Promise<DetectedFace[]> } {
  return {
    async detect(frame, ts) {
      const near = await primary.detect(frame, ts);
      return near.length ? near : small.detect(frame);
    },
  };
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
