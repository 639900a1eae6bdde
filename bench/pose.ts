/**
 * The five-point head pose (src/pipeline/readings/pose.ts) against MediaPipe's, on the same
 * frames of the shared talking-head clips; prints JSON.
 *
 *   npm run bench:pose -- [--every 2] [--out FILE]
 *
 * YuNet and the MediaPipe landmarker each look at every `every`-th frame; faces are
 * paired by overlap. The constants are fitted on all clips but one and measured on the
 * one left out (each clip in turn), so the error is that of clips the fit has not seen;
 * the fit on every clip is the one to ship, printed with the shipped constants' own error.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaults } from '../src/config.js';
import { openSource } from '../src/ingest/source.js';
import { iou } from '../src/pipeline/faces/face.js';
import { MediaPipeFaces } from '../src/pipeline/faces/mediapipe.js';
import { YuNetFaces } from '../src/pipeline/faces/yunet.js';
import { POINTS_POSE, pointsGeometry } from '../src/pipeline/readings/pose.js';
import { arg, commit } from './lib/measure.js';
import { VIDEOS } from './lib/clips.js';

interface Pair {
  clip: string;
  side: number;
  down: number;
  roll: number;
  mp: { yaw: number; pitch: number; roll: number };
}

const every = Number(arg('--every', '2'));
const cfg = defaults();
const rad = (d: number): number => (d * Math.PI) / 180;
const r1 = (v: number): number => Math.round(v * 10) / 10;
const r3 = (v: number): number => Math.round(v * 1000) / 1000;

const files = readdirSync(VIDEOS)
  .filter((f) => f.endsWith('.mp4'))
  .sort();
const yunet = await YuNetFaces.create(join(cfg.models.mediapipeDir, cfg.models.yunet), {
  size: cfg.analysis.detectorSize,
  upscale: false,
  scoreThreshold: 0.6,
  nmsIou: 0.3,
  maxFaces: 4,
});
const pairs: Pair[] = [];
for (const clip of files) {
  const mp = await MediaPipeFaces.create({ modelPath: join(cfg.models.mediapipeDir, 'mediapipe', 'face_landmarker.task'), maxFaces: 4 });
  const source = await openSource(join(VIDEOS, clip), { maxSide: cfg.analysis.maxSide, sequenceFps: 30, realtime: false }, clip);
  for await (const f of source.frames()) {
    if (f.index % every) continue;
    const ys = await yunet.detect(f);
    const ms = mp.detect(f, f.ts);
    for (const m of ms) {
      if (!m.pose) continue;
      const y = ys.find((c) => iou(c.box, m.box) > 0.5);
      const g = y && pointsGeometry(y.points);
      if (g) pairs.push({ clip, ...g, mp: m.pose });
    }
  }
  await mp.close();
}
await YuNetFaces.releaseSessions();

/**
 * Least squares of what is predicted on what is measured: tan(yaw) = side / depth;
 * tan(pitch) = (down - rest) / gain. (Fitted the other way round, the noise in the
 * points' small pitch range made the gain small and the pitch it read wild.)
 */
function fit(ps: Pair[]): typeof POINTS_POSE {
  let st = 0;
  let ss = 0;
  let n = 0;
  let sx = 0;
  let sy = 0;
  let sxx = 0;
  let sxy = 0;
  for (const p of ps) {
    st += p.side * Math.tan(rad(p.mp.yaw));
    ss += p.side * p.side;
    const tp = Math.tan(rad(p.mp.pitch));
    n++;
    sx += p.down;
    sy += tp;
    sxx += p.down * p.down;
    sxy += p.down * tp;
  }
  const b = (n * sxy - sx * sy) / (n * sxx - sx * sx);
  const a = (sy - b * sx) / n;
  return { noseDepth: ss / st, noseRest: -a / b, pitchGain: 1 / b };
}

function errors(ps: Pair[], k: typeof POINTS_POSE): { yaw: number; pitch: number; roll: number; n: number } {
  const e = { yaw: 0, pitch: 0, roll: 0, n: ps.length };
  for (const p of ps) {
    const pose = poseOfGeometry(p, k);
    e.yaw += Math.abs(pose.yaw - p.mp.yaw);
    e.pitch += Math.abs(pose.pitch - p.mp.pitch);
    e.roll += Math.abs(pose.roll - p.mp.roll);
  }
  return { yaw: r1(e.yaw / e.n), pitch: r1(e.pitch / e.n), roll: r1(e.roll / e.n), n: e.n };
}

/** The same formulas as poseFromPoints, from the measures already taken. */
function poseOfGeometry(p: Pair, k: typeof POINTS_POSE): { yaw: number; pitch: number; roll: number } {
  const deg = (r: number): number => (r * 180) / Math.PI;
  return { yaw: deg(Math.atan(p.side / k.noseDepth)), pitch: deg(Math.atan((p.down - k.noseRest) / k.pitchGain)), roll: deg(p.roll) };
}

const range = (v: number[]): [number, number] => [r1(Math.min(...v)), r1(Math.max(...v))];
const perClip = files.map((clip) => {
  const test = pairs.filter((p) => p.clip === clip);
  const k = fit(pairs.filter((p) => p.clip !== clip));
  return {
    clip,
    pairs: test.length,
    mediapipeYaw: range(test.map((p) => p.mp.yaw)),
    mediapipePitch: range(test.map((p) => p.mp.pitch)),
    heldOutMaeDeg: errors(test, k),
  };
});
const all = fit(pairs);
// the held-out error proper: pooled over the clips, each measured by the fit without it
const pooled = { yaw: 0, pitch: 0, roll: 0, n: 0 };
for (const { heldOutMaeDeg: e } of perClip) {
  pooled.yaw += e.yaw * e.n;
  pooled.pitch += e.pitch * e.n;
  pooled.roll += e.roll * e.n;
  pooled.n += e.n;
}
const out = {
  command: `npm run bench:pose -- ${process.argv.slice(2).join(' ')}`.trim(),
  commit: commit(),
  seed: null,
  every,
  pairs: pairs.length,
  perClip,
  heldOutMaeDeg: { yaw: r1(pooled.yaw / pooled.n), pitch: r1(pooled.pitch / pooled.n), roll: r1(pooled.roll / pooled.n), n: pooled.n },
  fittedOnAll: { noseDepth: r3(all.noseDepth), noseRest: r3(all.noseRest), pitchGain: r3(all.pitchGain) },
  shipped: { constants: POINTS_POSE, maeDeg: errors(pairs, POINTS_POSE) },
};
const json = JSON.stringify(out, null, 2);
process.stdout.write(`${json}\n`);
const file = process.argv.includes('--out') ? arg('--out', '') : null;
if (file) writeFileSync(file, `${json}\n`);
