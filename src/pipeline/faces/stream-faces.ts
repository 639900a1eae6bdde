import type { Config } from '../../config.js';
import type { RgbaFrame } from '../../ingest/frame.js';
import type { DetectedFace, FaceFinder } from './face.js';
import { MediaPipeFaces, type MediaPipeOptions } from './mediapipe.js';
import { DetectionReuse, type RedetectOptions } from './reuse.js';
import { YuNetFaces } from './yunet.js';

/** Where a stream's faces and their five alignment points come from (analysis.detector). */
export type Detector = Config['analysis']['detector'];

export interface FaceFinderOptions extends MediaPipeOptions {
  /**
   * yunet: YuNet's own five points (fast; no head pose); mediapipe: the 478-point mesh
   * (head pose; costlier, see yunet.ts). Facial actions always come from MediaPipe, opened
   * for a yunet stream only while they are asked for.
   */
  detector: Detector;
  /** YuNet's model (dynamic input size); null: no YuNet (then detector must be mediapipe, no small faces). */
  yunetPath: string | null;
  /** YuNet's input size for near faces (longer side, px). */
  yunetSize: number;
  /** Where nothing is found, look again at a 640 px input for faces at kiosk distance. */
  smallFaces: boolean;
  /** How long a YuNet detection stands for the frames after it (see reuse.ts); MediaPipe tracks by itself. */
  redetect: RedetectOptions;
}

const SMALL_SIZE = 640;
const DETECTION = { scoreThreshold: 0.6, nmsIou: 0.3 };

/**
 * One stream's face finder: the primary detector, small faces as a fallback, MediaPipe
 * for facial actions on demand. Runs wherever it is opened (a worker thread, or
 * this thread with `analysis.landmarkWorkers` 0).
 */
export class StreamFaces implements FaceFinder {
  /** MediaPipe: the primary detector, or (yunet streams) only while actions are on. */
  private mp: MediaPipeFaces | null;
  private last: Promise<unknown> = Promise.resolve();
  private closed: Promise<void> | null = null;
  readonly reuse: DetectionReuse;

  private constructor(
    private readonly o: FaceFinderOptions,
    private readonly near: YuNetFaces | null,
    private readonly small: YuNetFaces | null,
    mp: MediaPipeFaces | null,
  ) {
    this.mp = mp;
    this.reuse = new DetectionReuse(o.redetect);
  }

  static async create(o: FaceFinderOptions): Promise<StreamFaces> {
    if (o.detector === 'yunet' && !o.yunetPath) throw new Error('detector yunet needs the YuNet model (models.yunet)');
    const primary = o.detector === 'yunet';
    // near faces at the frame's own size (or yunetSize if larger); small ones scaled up to 640
    const base = o.yunetPath
      ? await YuNetFaces.create(o.yunetPath, {
          size: primary ? o.yunetSize : SMALL_SIZE,
          upscale: !primary,
          maxFaces: o.maxFaces,
          ...DETECTION,
        })
      : null;
    const near = primary ? base : null;
    const small = !o.smallFaces || !base ? null : !primary ? base : base.resized(SMALL_SIZE, true);
    const mp = o.detector === 'mediapipe' || o.actions ? await MediaPipeFaces.create(o) : null;
    return new StreamFaces(o, near, small, mp);
  }

  async detect(frame: RgbaFrame, ts: number): Promise<DetectedFace[]> {
    const run = this.find(frame, ts);
    this.last = run.catch(() => undefined);
    return run;
  }

  private async find(frame: RgbaFrame, ts: number): Promise<DetectedFace[]> {
    // MediaPipe (the detector, or for facial actions) sees every frame: its VIDEO mode tracks
    const kept = this.mp ? null : this.reuse.lookup(frame);
    if (kept) return kept;
    const primary = this.mp ? this.mp.detect(frame, ts) : await this.near!.detect(frame);
    const found = primary.length || !this.small ? primary : await this.small.detect(frame);
    if (!this.mp) this.reuse.store(frame, found);
    return found;
  }

  async setActions(on: boolean): Promise<void> {
    if (this.o.detector === 'mediapipe') return this.mp!.setActions(on);
    if (on && !this.mp) this.mp = await MediaPipeFaces.create({ ...this.o, actions: true });
    else if (!on && this.mp) void this.retire();
  }

  close(): Promise<void> {
    this.closed ??= this.retire();
    return this.closed;
  }

  /** Closes MediaPipe once the frame that may still be on it is done (YuNet's session is the thread's: see yunet.ts). */
  private retire(): Promise<void> {
    const mp = this.mp;
    this.mp = null;
    return this.last.then(async () => {
      await mp?.close();
    });
  }
}
