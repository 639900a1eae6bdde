import type { DetectedFace } from './face.js';

/**
 * Which of a frame's faces are analysed: none below a minimum height, then the largest
 * N, or (kiosk) the N nearest the centre, so a passer-by behind the user is not read.
 */
export interface FacePick {
  pick: 'largest' | 'centre';
  /** Faces less high than this, in analysed pixels, are left out. */
  minHeightPx: number;
  maxFaces: number;
}

export interface LeftOut {
  tooSmall: number;
  overLimit: number;
}

export function selectFaces(faces: DetectedFace[], frameHeight: number, o: FacePick, left: LeftOut): DetectedFace[] {
  const big = o.minHeightPx > 0 ? faces.filter((f) => f.box.h * frameHeight >= o.minHeightPx) : faces;
  left.tooSmall += faces.length - big.length;
  if (big.length <= o.maxFaces) return big;
  left.overLimit += big.length - o.maxFaces;
  const off = (f: DetectedFace): number => Math.hypot(f.box.x + f.box.w / 2 - 0.5, f.box.y + f.box.h / 2 - 0.5);
  const order =
    o.pick === 'centre'
      ? (a: DetectedFace, b: DetectedFace) => off(a) - off(b)
      : (a: DetectedFace, b: DetectedFace) => b.box.w * b.box.h - a.box.w * a.box.h;
  return [...big].sort(order).slice(0, o.maxFaces);
}
