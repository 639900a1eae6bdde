import type { Config } from '../../config.js';
import type { RgbaFrame } from '../../ingest/frame.js';
import type { DetectedFace } from './face.js';

/** analysis.redetect: how long a detection may stand for the frames after it. */
export type RedetectOptions = Config['analysis']['redetect'];

/** Samples per box side: 256 points per face say whether it moved, at a negligible cost next to a detection. */
const GRID = 16;

/**
 * The last detection's faces stand for the next frames while the picture under them
 * holds still: a talking head in a call moves little between frames a tenth of a second
 * apart, and finding it again costs a detector run per frame. Detected again on motion
 * (the grey under the boxes changed by more than `motion` on average, a turn, a lean, a
 * hand), on loss (nothing was found last time), on a change of frame size and every
 * `every` frames regardless, so a face that walks in is found within `every` frames.
 */
export class DetectionReuse {
  /** Frames answered with the last detection, and frames detected (for tests and benches). */
  reused = 0;
  detected = 0;
  /** The change measured for the last frame that could have reused a detection (0..255; NaN: none measured). */
  lastChange = NaN;
  private faces: DetectedFace[] = [];
  private ref: Uint8Array = new Uint8Array(0);
  private width = 0;
  private height = 0;
  private since = 0;

  constructor(private readonly o: RedetectOptions) {}

  /** The last faces when this frame may reuse them, else null: the caller detects and calls `store`. */
  lookup(frame: RgbaFrame): DetectedFace[] | null {
    if (this.o.every <= 1 || !this.faces.length || this.since + 1 >= this.o.every) return null;
    if (frame.width !== this.width || frame.height !== this.height) return null;
    this.lastChange = meanChange(this.ref, sample(frame, this.faces));
    if (this.lastChange > this.o.motion) return null;
    this.since++;
    this.reused++;
    return this.faces;
  }

  store(frame: RgbaFrame, faces: DetectedFace[]): void {
    this.detected++;
    this.faces = faces;
    this.since = 0;
    this.width = frame.width;
    this.height = frame.height;
    this.ref = faces.length && this.o.every > 1 ? sample(frame, faces) : new Uint8Array(0);
  }
}

/** Grey values on a GRID x GRID lattice inside each face's box (boxes are normalised to the frame). */
function sample(frame: RgbaFrame, faces: readonly DetectedFace[]): Uint8Array {
  const { width: w, height: h, data } = frame;
  const out = new Uint8Array(faces.length * GRID * GRID);
  let k = 0;
  for (const f of faces) {
    for (let gy = 0; gy < GRID; gy++) {
      const y = Math.min(h - 1, Math.floor((f.box.y + (f.box.h * (gy + 0.5)) / GRID) * h));
      for (let gx = 0; gx < GRID; gx++) {
        const x = Math.min(w - 1, Math.floor((f.box.x + (f.box.w * (gx + 0.5)) / GRID) * w));
        const i = (y * w + x) * 4;
        // integer luma (BT.601 weights): the same on every platform, no floats needed
        out[k++] = (data[i]! * 77 + data[i + 1]! * 150 + data[i + 2]! * 29) >> 8;
      }
    }
  }
  return out;
}

function meanChange(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length || !a.length) return Infinity;
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
  return s / a.length;
}
