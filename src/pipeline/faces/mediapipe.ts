import { readFile } from 'node:fs/promises';
import type { FaceLandmarker as MpFaceLandmarker } from '@mediapipe/tasks-vision';
import { installMediaPipeGlobals, mediapipeWasmDir } from './mediapipe-node.js';
import type { RgbaFrame } from '../../ingest/frame.js';
import { unit, type DetectedFace, type FaceFinder, type FivePoints, type Pose } from './face.js';

/**
 * Mesh indices for the contract's five points: iris centres (468 lies on the image's
 * left), nose tip, mouth corners (61 image-left, 291 image-right).
 */
const FIVE = [468, 473, 1, 61, 291] as const;

export interface MediaPipeOptions {
  modelPath: string;
  maxFaces: number;
  minDetectionConfidence?: number;
  minTrackingConfidence?: number;
  /** VIDEO tracks faces between frames (the live default); IMAGE detects afresh every call. */
  mode?: 'VIDEO' | 'IMAGE';
  /** Compute blendshapes (facial actions); off unless a subscriber or the config asks. */
  actions?: boolean;
}

/** MediaPipe FaceLandmarker in VIDEO mode: tracks between frames, so timestamps must increase. */
export class MediaPipeFaces implements FaceFinder {
  private lastTs = -1;

  private constructor(
    private readonly mp: MpFaceLandmarker,
    private readonly mode: 'VIDEO' | 'IMAGE',
  ) {}

  static async create(opts: MediaPipeOptions): Promise<MediaPipeFaces> {
    installMediaPipeGlobals();
    const model = await readFile(opts.modelPath).catch((e: Error) => {
      throw new Error(`face landmarker model not readable at ${opts.modelPath}: ${e.message}`);
    });
    const { FilesetResolver, FaceLandmarker } = await import('@mediapipe/tasks-vision');
    const fileset = await FilesetResolver.forVisionTasks(mediapipeWasmDir());
    const mp = await FaceLandmarker.createFromOptions(fileset, {
      baseOptions: { modelAssetBuffer: new Uint8Array(model), delegate: 'CPU' },
      runningMode: opts.mode ?? 'VIDEO',
      numFaces: opts.maxFaces,
      minFaceDetectionConfidence: opts.minDetectionConfidence ?? 0.5,
      minTrackingConfidence: opts.minTrackingConfidence ?? 0.5,
      outputFaceBlendshapes: opts.actions ?? false,
      outputFacialTransformationMatrixes: true,
    });
    return new MediaPipeFaces(mp, opts.mode ?? 'VIDEO');
  }

  /** Turns the blendshape model on or off for the next frames. */
  async setActions(on: boolean): Promise<void> {
    await this.mp.setOptions({ outputFaceBlendshapes: on });
  }

  detect(frame: RgbaFrame, tsMs: number): DetectedFace[] {
    // MediaPipe rejects non-increasing timestamps; a restarted or looping source must not crash it
    const ts = Math.max(Math.round(tsMs), this.lastTs + 1);
    this.lastTs = ts;
    const image = { data: frame.data, width: frame.width, height: frame.height } as unknown as ImageData;
    const res = this.mode === 'VIDEO' ? this.mp.detectForVideo(image, ts) : this.mp.detect(image);
    return res.faceLandmarks.map((lm, i) => {
      const face = toFace(lm, frame.width, frame.height);
      const m = res.facialTransformationMatrixes?.[i];
      if (m && m.data.length === 16) face.pose = poseOf(m.data);
      const b = res.faceBlendshapes?.[i];
      if (b)
        face.actions = Object.fromEntries(
          b.categories.filter((c) => c.categoryName !== '_neutral').map((c) => [c.categoryName, Math.round(c.score * 1e3) / 1e3]),
        );
      return face;
    });
  }

  close(): Promise<void> {
    this.mp.close();
    return Promise.resolve();
  }
}

/**
 * Yaw (turn, positive to the image's right), pitch (nod) and roll (tilt) in degrees from
 * the 4x4 pose matrix, which MediaPipe stores column-major; R = Rz(roll) Ry(yaw) Rx(pitch).
 */
export function poseOf(d: readonly number[]): Pose {
  const r = (row: number, col: number): number => d[col * 4 + row]!;
  const deg = (v: number): number => Math.round(((v * 180) / Math.PI) * 10) / 10;
  return {
    yaw: deg(Math.asin(Math.max(-1, Math.min(1, -r(2, 0))))),
    pitch: deg(Math.atan2(r(2, 1), r(2, 2))),
    roll: deg(Math.atan2(r(1, 0), r(0, 0))),
  };
}

function toFace(lm: ReadonlyArray<{ x: number; y: number }>, w: number, h: number): DetectedFace {
  let x0 = 1;
  let y0 = 1;
  let x1 = 0;
  let y1 = 0;
  for (const p of lm) {
    x0 = Math.min(x0, p.x);
    y0 = Math.min(y0, p.y);
    x1 = Math.max(x1, p.x);
    y1 = Math.max(y1, p.y);
  }
  const pt = (i: number): [number, number] => {
    const p = lm[i];
    if (!p) throw new Error(`landmark ${i} missing: the model must output the 478-point mesh with irises`);
    // MediaPipe coordinates put pixel centres at i+0.5; the warp puts them at integers
    return [p.x * w - 0.5, p.y * h - 0.5];
  };
  return {
    box: { x: unit(x0), y: unit(y0), w: unit(x1) - unit(x0), h: unit(y1) - unit(y0) },
    points: FIVE.map(pt) as FivePoints,
  };
}
