import type { FivePoints, Pose } from '../faces/face.js';

/**
 * A coarse head pose from the five alignment points, for detectors without a mesh
 * (YuNet): roll from the eye line; yaw from how far the nose tip sits off the face's
 * midline, in eye distances (it sits in front of the eyes, so it moves sideways by
 * depth x sin(yaw) while the eyes close up by cos(yaw)); pitch from where the nose
 * tip sits between the eye line and the mouth line. The constants are fitted to
 * MediaPipe's head pose on the same frames (`npm run bench:pose`, bench/results/pose.json),
 * which also reports the error.
 */
export const POINTS_POSE = {
  /** Nose depth ahead of the eyes, in eye distances. */
  noseDepth: 0.708,
  /** Where the nose tip sits between eye line (0) and mouth line (1) on a frontal face. */
  noseRest: 0.452,
  /** How far that moves per unit of tan(pitch). */
  pitchGain: 1.326,
};

const deg = (r: number): number => Math.round(((r * 180) / Math.PI) * 10) / 10;

/** The raw measures the pose is read from (also what bench:pose fits on). */
export function pointsGeometry(p: FivePoints): { roll: number; side: number; down: number } | null {
  const [le, re, n, lm, rm] = p;
  const ex = (re[0] - le[0]) / 2;
  const ey = (re[1] - le[1]) / 2;
  const d = Math.hypot(ex, ey) * 2;
  if (!(d > 1e-6)) return null;
  const roll = Math.atan2(ey, ex);
  const c = Math.cos(-roll);
  const s = Math.sin(-roll);
  const eye = [le[0] + ex, le[1] + ey] as const;
  // into the eye line's frame: x along the eyes, y down the face, both in eye distances
  const to = (q: readonly [number, number]): [number, number] => {
    const dx = q[0] - eye[0];
    const dy = q[1] - eye[1];
    return [(dx * c - dy * s) / d, (dx * s + dy * c) / d];
  };
  const nose = to(n);
  const mouth = to([(lm[0] + rm[0]) / 2, (lm[1] + rm[1]) / 2]);
  if (!(mouth[1] > 1e-3)) return null;
  const midX = mouth[0] / 2;
  return { roll, side: nose[0] - midX, down: nose[1] / mouth[1] };
}

export function poseFromPoints(p: FivePoints, k = POINTS_POSE): Pose | null {
  const g = pointsGeometry(p);
  if (!g) return null;
  return {
    yaw: deg(Math.atan(g.side / k.noseDepth)),
    pitch: deg(Math.atan((g.down - k.noseRest) / k.pitchGain)),
    roll: deg(g.roll),
  };
}
