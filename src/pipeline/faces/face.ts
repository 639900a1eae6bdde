import type { RgbaFrame } from '../../ingest/frame.js';
import type { Embeddings } from '../../model/arpgnet.js';

/** Five alignment points in frame pixels, in the contract's order. */
export type FivePoints = [[number, number], [number, number], [number, number], [number, number], [number, number]];

export interface FaceBox {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Head rotation in degrees from the landmarker's facial transformation matrix. */
export interface Pose {
  yaw: number;
  pitch: number;
  roll: number;
}

export interface DetectedFace {
  /** Normalised to the frame (0..1). */
  box: FaceBox;
  points: FivePoints;
  pose?: Pose | undefined;
  /** Detection confidence, where the detector gives one (YuNet does; MediaPipe's landmarker does not). */
  score?: number | undefined;
  /** MediaPipe's 52 blendshape coefficients (visible facial actions), when asked for. */
  actions?: Record<string, number> | undefined;
}

/** A Float32Array view of shared memory as it crosses to a worker thread: by reference, not copied. */
export interface SharedView {
  buffer: SharedArrayBuffer;
  offset: number;
  length: number;
}

/**
 * A stream's encoder and head where they run off the main thread (in the face worker
 * that finds its faces). Inputs are views of shared memory, so they cross uncopied.
 */
export interface Inference {
  encode(faces: Float32Array, n: number): Promise<Embeddings>;
  /** app [n, T, Da], rel [n, T, Dr], valid [n, T] (larger buffers: the first n windows are read) -> [n, classes]. */
  classify(app: Float32Array, rel: Float32Array, valid: Float32Array, n: number): Promise<Float32Array>;
}

/**
 * Whatever finds a stream's faces: YuNet, MediaPipe, both for one stream
 * (StreamFaces), that on a worker thread (FacePool), or a still image's (StillFaces).
 */
export interface FaceFinder {
  detect(frame: RgbaFrame, tsMs: number): DetectedFace[] | Promise<DetectedFace[]>;
  /** Facial actions (blendshapes) on or off for the next frames. */
  setActions(on: boolean): Promise<void>;
  /** Where the stream's inference runs beside its face finding (a worker that loaded the model), else none. */
  readonly inference?: Inference | null | undefined;
  /** Resolves once its sessions are released (a worker must not end while a release is in native code). */
  close(): Promise<void>;
}

/** Into 0..1: boxes are normalised to the frame and may not leave it. */
export const unit = (v: number): number => Math.min(1, Math.max(0, v));

export function iou(a: FaceBox, b: FaceBox): number {
  const x0 = Math.max(a.x, b.x);
  const y0 = Math.max(a.y, b.y);
  const x1 = Math.min(a.x + a.w, b.x + b.w);
  const y1 = Math.min(a.y + a.h, b.y + b.h);
  const inter = Math.max(0, x1 - x0) * Math.max(0, y1 - y0);
  const union = a.w * a.h + b.w * b.h - inter;
  return union > 0 ? inter / union : 0;
}
