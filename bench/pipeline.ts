/**
 * End-to-end benchmark of the offline pipeline on a real clip; prints JSON.
 *
 *   npm run bench -- [--clip d18.mp4] [--fps 30] [--threads N] [--old DIR]
 *
 * Every frame is analysed (fps = the clip's rate by default). "streaming" is the path as
 * it was (MediaPipe on the main thread, a frame start to end); "pipelined" puts landmarks
 * on a worker thread and detects the next frame while this one is encoded (1.2.0);
 * "yunet" is today's default: YuNet's five points instead of MediaPipe's mesh, on the
 * worker, the next frame found while this one is encoded, one onnxruntime thread (the
 * others run with the two they shipped with; --threads sets all), its faces reused for up to
 * two frames while the picture under them holds still (analysis.redetect); "yunetEveryFrame"
 * is that detecting every frame, as before. CPU seconds per face-frame
 * count this process's threads and its decoder (a child, counted once it has exited). The "naive" run
 * re-encodes all T frames of a window each time the head runs, instead of reusing
 * the per-frame embeddings: the cost a non-streaming model split would pay. `--old DIR`
 * adds "before": an earlier model pair (DIR/arpgnet-edge.{encoder,head}.onnx) on the path
 * it shipped with, the encoder and head on the main thread, YuNet on the workers.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { lastValueFrom, tap } from 'rxjs';
import { openSource } from '../src/ingest/source.js';
import { silentLogger } from '../src/log.js';
import { EmotionPipeline } from '../src/pipeline/emotion-pipeline.js';
import type { EmotionEvent } from '../src/publish/events.js';
import { defaults, type Config } from '../src/config.js';
import { sharedDir } from '../src/paths.js';
import { arg, commit, cpuSeconds, pct } from './lib/measure.js';

const clip = join(sharedDir(), 'data', 'videos', arg('--clip', 'd18.mp4'));
const threadsArg = arg('--threads', '');
const threadsFor = (shipped: number): number => (threadsArg ? Number(threadsArg) : shipped);
const r2 = (v: number): number => Math.round(v * 100) / 100;

function decodeMsPerFrame(): number {
  const t = performance.now();
  const out = execFileSync('ffmpeg', ['-v', 'error', '-i', clip, '-vf', 'scale=480:-2', '-pix_fmt', 'rgba', '-f', 'rawvideo', 'pipe:1'], {
    maxBuffer: 1 << 30,
  });
  const frames = out.length / (480 * 480 * 4);
  return (performance.now() - t) / frames;
}

async function once(
  naive: boolean,
  landmarkWorkers: number,
  detector: 'yunet' | 'mediapipe',
  threads: number,
  over: { models?: { encoder: string; head: string }; inference?: 'workers' | 'main'; redetect?: Config['analysis']['redetect'] } = {},
): Promise<Record<string, unknown>> {
  const cfg = defaults();
  cfg.runtime = { ...cfg.runtime, providers: ['cpu'], threads };
  cfg.analysis = {
    ...cfg.analysis,
    landmarkWorkers,
    detector,
    ...(over.inference ? { inference: over.inference } : {}),
    ...(over.redetect ? { redetect: over.redetect } : {}),
  };
  if (over.models) cfg.models = { ...cfg.models, ...over.models };
  const pipeline = await EmotionPipeline.create(cfg, silentLogger);
  const m = pipeline.model;
  if (naive) {
    const classify = m.classify.bind(m);
    const { width, height } = m.preprocess.inputSize;
    const faces = new Float32Array(m.window * m.channels * width * height);
    m.classify = async (app, rel, valid, n) => {
      for (let i = 0; i < n; i++) await m.encode(faces, m.window);
      return classify(app, rel, valid, n);
    };
  }
  const source = await openSource(clip, { maxSide: 640, sequenceFps: 30, realtime: false }, 'bench');
  const fps = Number(arg('--fps', String(source.info.fps)));
  let peakRss = 0;
  const timer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
  const run = await pipeline.analyse(source, { fps });
  const latencies: number[] = [];
  const t0 = performance.now();
  const cpu0 = cpuSeconds();
  await lastValueFrom(run.events$.pipe(tap((e) => e.type === 'emotion' && latencies.push((e as EmotionEvent).latencyMs))));
  const cpu = cpuSeconds() - cpu0;
  const wall = performance.now() - t0;
  clearInterval(timer);
  const a = run.state;
  const t = a.times;
  await pipeline.close();
  return {
    threads,
    faceFramesPerSecond: r2((t.faceFrames * 1000) / wall),
    // this process (all its threads) and its finished children (the decoder), so per-core comparisons are exact
    cpuSecondsPerFaceFrame: +(cpu / t.faceFrames).toFixed(4),
    msPerStage: {
      landmarks: r2(t.landmarks / a.analysed),
      align: r2(t.align / t.faceFrames),
      encoder: r2(t.encoder / t.faceFrames),
      head: r2(t.head / t.windows),
    },
    headPerEventVsEncodePerFace: r2(t.head / t.windows / (t.encoder / t.faceFrames)),
    latencyMs: { p50: r2(pct(latencies, 50)), p95: r2(pct(latencies, 95)) },
    events: latencies.length,
    faceFrames: t.faceFrames,
    peakRssMb: Math.round(peakRss / 2 ** 20),
  };
}

const decode = decodeMsPerFrame();
// --old DIR: the earlier model pair on the path it shipped with (encoder and head on the main
// thread), measured in this run beside today's default
const oldDir = arg('--old', '');
const before = oldDir
  ? await once(false, defaults().analysis.landmarkWorkers, 'yunet', threadsFor(defaults().runtime.threads), {
      models: { encoder: join(oldDir, 'arpgnet-edge.encoder.onnx'), head: join(oldDir, 'arpgnet-edge.head.onnx') },
      inference: 'main',
    })
  : null;
// the old path: MediaPipe on this thread, one frame start to end; then landmarks on a worker,
// the next frame detected while this one is encoded (analysis.landmarkWorkers); then YuNet there
const streaming = await once(false, 0, 'mediapipe', threadsFor(2));
const pipelined = await once(false, 1, 'mediapipe', threadsFor(2));
const yunet = await once(false, 1, 'yunet', threadsFor(defaults().runtime.threads));
// the same, detecting every frame (analysis.redetect every 1): what reusing YuNet's faces saves
const everyFrame = await once(false, 1, 'yunet', threadsFor(defaults().runtime.threads), { redetect: { every: 1, motion: 0 } });
const naive = await once(true, 0, 'mediapipe', threadsFor(2));
const fps = (r: Record<string, unknown>): number => r['faceFramesPerSecond'] as number;
const cpu = (r: Record<string, unknown>): number => r['cpuSecondsPerFaceFrame'] as number;
process.stdout.write(
  `${JSON.stringify(
    {
      command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
      commit: commit(),
      seed: null,
      clip: arg('--clip', 'd18.mp4'),
      decodeMsPerFrame: r2(decode),
      streaming,
      pipelined,
      yunet,
      yunetEveryFrame: everyFrame,
      naive,
      ...(before ? { before: { models: oldDir, ...before }, cpuPerFaceFrameYunetVsBefore: r2(cpu(yunet) / cpu(before)) } : {}),
      pipelinedVsStreaming: r2(fps(pipelined) / fps(streaming)),
      yunetVsStreaming: r2(fps(yunet) / fps(streaming)),
      yunetVsPipelined: r2(fps(yunet) / fps(pipelined)),
      cpuPerFaceFrameYunetVsStreaming: r2(cpu(yunet) / cpu(streaming)),
      cpuPerFaceFrameYunetVsEveryFrame: r2(cpu(yunet) / cpu(everyFrame)),
    },
    null,
    2,
  )}\n`,
);
