/**
 * What the v3 readings cost beside the whole path; prints JSON.
 *
 *   npm run bench:readings -- [--clip d18.mp4] [--repeat 200] [--rounds 15] [--out FILE]
 *
 * Whole passes of today's default path over a real clip, every frame analysed, with the
 * readings on and off in turn (`rounds` of each, alternated), give the CPU seconds per
 * face-frame of everything (as `npm run bench` counts them) both ways. The same run's
 * own inputs (the detector's five points per face, the probabilities of each window)
 * are then put through each new reading `repeat` times on this thread, so its cost per
 * face-frame is measured on real data in the same process: valence/arousal, the
 * five-point pose with attention, the summary and the personal baseline.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lastValueFrom, tap } from 'rxjs';
import { defaults } from '../src/config.js';
import { openSource } from '../src/ingest/source.js';
import { analyseStream } from '../src/pipeline/stream.js';
import { silentLogger } from '../src/log.js';
import { sharedDir } from '../src/paths.js';
import type { FivePoints } from '../src/pipeline/faces/face.js';
import { EmotionPipeline } from '../src/pipeline/emotion-pipeline.js';
import { shownLabels } from '../src/pipeline/labeller.js';
import { affectOf, circumplex } from '../src/pipeline/readings/affect.js';
import { attentionOf } from '../src/pipeline/readings/attention.js';
import { FaceBaseline } from '../src/pipeline/readings/baseline.js';
import { poseFromPoints } from '../src/pipeline/readings/pose.js';
import { FaceSummary } from '../src/pipeline/readings/summary.js';
import { arg, commit, cpuSeconds } from './lib/measure.js';

const clipName = arg('--clip', 'd18.mp4');
const clip = join(sharedDir(), 'data', 'videos', clipName);
const repeat = Number(arg('--repeat', '200'));

const ownCpu = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

const rounds = Number(arg('--rounds', '15'));
const cfg = defaults();
cfg.runtime = { ...cfg.runtime, providers: ['cpu'] };
const pipeline = await EmotionPipeline.create(cfg, silentLogger);
const labels = pipeline.model.labels;
const shown = shownLabels(labels, cfg.analysis.hiddenLabels);
const points: FivePoints[] = [];
const probs: Float32Array[] = [];

/** One pass of the whole default path over the clip, with or without the readings; CPU s per face-frame. */
async function pass(readings: boolean): Promise<{ cpu: number; faceFrames: number }> {
  const source = await openSource(clip, { maxSide: cfg.analysis.maxSide, sequenceFps: 30, realtime: false }, 'bench');
  const faces = await pipeline.faceFinder();
  const state = pipeline.createState(source.id, faces, { readings });
  pipeline.batcher?.join();
  const cpu0 = cpuSeconds();
  await lastValueFrom(
    analyseStream(source, state, pipeline.model, { fps: source.info.fps, lookahead: pipeline.facePool !== null, maxFailedFrames: 10 }).pipe(
      tap((e) => {
        if (!readings || e.type !== 'emotion' || probs.length >= 4096) return;
        probs.push(Float32Array.from(labels.map((l) => e.scores[l] ?? 0)));
      }),
    ),
  );
  const cpu = cpuSeconds() - cpu0;
  pipeline.batcher?.leave();
  await faces.close();
  return { cpu, faceFrames: state.times.faceFrames };
}

// alternate which goes first, so drift in the machine's load falls on both
const on: number[] = [];
const off: number[] = [];
let faceFrames = 0;
await pass(true); // warm-up, not counted
for (let r = 0; r < rounds; r++) {
  for (const mode of r % 2 === 0 ? [true, false] : [false, true]) {
    const p = await pass(mode);
    faceFrames = p.faceFrames;
    (mode ? on : off).push(p.cpu / p.faceFrames);
  }
}
const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
const cpu = median(on) * faceFrames;
await pipeline.close();
// the five points the same detector gives on the same clip (its tracks hold only the newest face)
{
  const { YuNetFaces } = await import('../src/pipeline/faces/yunet.js');
  const y = await YuNetFaces.create(join(cfg.models.mediapipeDir, cfg.models.yunet), {
    size: cfg.analysis.detectorSize,
    upscale: false,
    scoreThreshold: 0.6,
    nmsIou: 0.3,
    maxFaces: 4,
  });
  const again = await openSource(clip, { maxSide: cfg.analysis.maxSide, sequenceFps: 30, realtime: false }, 'points');
  for await (const f of again.frames()) for (const face of await y.detect(f)) points.push(face.points);
  await YuNetFaces.releaseSessions();
}

/** CPU µs per call of `fn` over the recorded inputs, `repeat` times. */
function perCall(n: number, fn: (i: number) => void): number {
  const t = ownCpu();
  for (let r = 0; r < repeat; r++) for (let i = 0; i < n; i++) fn(i);
  return ((ownCpu() - t) * 1e6) / (repeat * n);
}
const pts = circumplex(labels);
const limits = cfg.analysis.attention;
let sink = 0;
const affectUs = perCall(probs.length, (i) => (sink += affectOf(probs[i]!, pts, shown).valence));
const poseUs = perCall(points.length, (i) => {
  const p = poseFromPoints(points[i]!);
  sink += attentionOf(p, 'points', limits).yaw ?? 0;
});
const summary = new FaceSummary(1000, 0);
const summaryUs = perCall(probs.length, (i) => summary.add(i * 33, labels[i % labels.length]!, { valence: 0.1, arousal: 0 }, true));
const baseline = new FaceBaseline(labels.length, 3000);
const baselineUs = perCall(probs.length, (i) => (sink += baseline.update(i * 33, probs[i]!, { valence: 0, arousal: 0 }).valence));
const perFaceFrameUs = (cpu / faceFrames) * 1e6;
const share = (us: number): number => Math.round((us / perFaceFrameUs) * 1e5) / 1e3;
const out = {
  command: `npm run bench:readings -- ${process.argv.slice(2).join(' ')}`.trim(),
  commit: commit(),
  seed: null,
  clip: clipName,
  faceFrames,
  readings: probs.length,
  rounds,
  cpuSecondsPerFaceFrame: +(cpu / faceFrames).toFixed(4),
  wholePath: {
    note: 'median over rounds of whole passes, readings on and off alternated in this process; the difference is below the machine noise, which the per-call times resolve',
    readingsOn: +median(on).toFixed(5),
    readingsOff: +median(off).toFixed(5),
    onOverOff: +(median(on) / median(off)).toFixed(4),
    /** Each round's on over its own off: drift between rounds cancels. */
    onOverOffPairedMedian: +median(on.map((v, i) => v / off[i]!)).toFixed(4),
    spreadOn: [+Math.min(...on).toFixed(5), +Math.max(...on).toFixed(5)],
    spreadOff: [+Math.min(...off).toFixed(5), +Math.max(...off).toFixed(5)],
  },
  cpuMicrosecondsPerCall: {
    valenceArousal: +affectUs.toFixed(3),
    pointsPoseAndAttention: +poseUs.toFixed(3),
    summary: +summaryUs.toFixed(3),
    baseline: +baselineUs.toFixed(3),
  },
  percentOfFaceFrame: {
    valenceArousal: share(affectUs),
    pointsPoseAndAttention: share(poseUs),
    summary: share(summaryUs),
    baseline: share(baselineUs),
  },
  sink: Number.isFinite(sink),
};
const json = JSON.stringify(out, null, 2);
process.stdout.write(`${json}\n`);
if (process.argv.includes('--out')) writeFileSync(arg('--out', ''), `${json}\n`);
