/**
 * Live-call benchmark: real face clips sent as RTP by ffmpeg into the SFU on loopback,
 * each analysed as its own stream; prints JSON.
 *
 *   npm run bench:serve -- [--fps 10] [--seconds 20] [--setups old,1.2,high,batch,new] [--streams 5,10 | --max 12] [--threads N] [--per-room 10] [--old DIR] [--sender-side 320] [--max-side 320] [--single-layer]
 *
 * --setups: configurations measured in turn in one run (SETUPS below: `old` is MediaPipe on
 * the main thread as before 1.2.0, `1.2` MediaPipe on worker threads, both with the two
 * onnxruntime threads they shipped with and decoding the full picture, `batch` today's
 * default with encoder calls batched across streams (2 ms), `high` today's default decoding the full simulcast
 * layer, `1.3` the 1.3 path (YuNet on the workers, encoder and head on the main thread; with
 * --old DIR on that model pair), `new`
 * today's default (encoder and head in the face workers too), `alternate` that with
 * analysis.mirror alternate, `every-frame` today's default detecting every frame (no
 * reuse of YuNet's faces, analysis.redetect every 1); default `old,new`); --per-room:
 * senders per room (10; a room holds at most 16 peers); --threads overrides every setup's;
 * each sender publishes a half-size simulcast layer beside the full one, as the call
 * page does (--single-layer: only the full one); --streams: the stream counts to try
 * (default 5,10), or --max N: 1..N, stopping at the first that fails.
 *
 * For 1, 2, ... concurrent streams: producer created -> first emotion event, CPU of
 * the server side (Node process + decoder processes + mediasoup worker; the senders
 * are not counted) per analysed stream, and frame-to-event latency (decoded frame
 * leaving the decoder -> event published). Stops at the first count whose p95 goes
 * over 150 ms or whose analysed rate falls below 90 % of --fps.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { defaults, type Config } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import type { EmotionEvent, PipelineEvent } from '../src/publish/events.js';
import { serve } from '../src/roles/serve.js';
import { RelayHost } from './lib/relay-host.js';
import { h264Clip, publishClip, subscribeEvents, TestPeer, until } from './lib/call.js';
import { processes } from './lib/clips.js';
import { arg, commit, pct, procCpuMs } from './lib/measure.js';

const fps = Number(arg('--fps', '10'));
const seconds = Number(arg('--seconds', '20'));
const max = arg('--max', '') ? Number(arg('--max', '')) : null;
const threadsArg = arg('--threads', '');
/** Longest side of the analysed picture (analysis.maxSide; default 640). */
const maxSide = arg('--max-side', '') ? Number(arg('--max-side', '')) : undefined;
/** Longest side of what the senders send (default: the clips' own). */
const senderSide = arg('--sender-side', '') ? Number(arg('--sender-side', '')) : undefined;
/** Every sender publishes simulcast: a half-size layer beside the full one (as the call page does). */
const simulcast = !process.argv.includes('--single-layer');
/** Senders per room: a room holds at most limits.peersPerRoom (16), so 20 streams take two or more. */
const perRoom = Number(arg('--per-room', '10'));
/** An earlier model pair (DIR/arpgnet-edge.{encoder,head}.onnx) for the setups that name it. */
const oldDir = arg('--old', '');
const CLIPS = ['d18', 'd19', 'd20', 'd11', 'd12', 'd18', 'd19', 'd20'];

type Analysis = Config['analysis'];
const SETUPS: Record<string, { analysis: Partial<Analysis>; threads?: number; old?: boolean }> = {
  old: { analysis: { detector: 'mediapipe', landmarkWorkers: 0, batchWaitMs: 0, layer: 'high', inference: 'main' }, threads: 2 },
  '1.2': { analysis: { detector: 'mediapipe', batchWaitMs: 0, layer: 'high', inference: 'main' }, threads: 2 },
  // with --old DIR, on that model pair (1.3.0's encoder mirrors each face inside the graph)
  '1.3': { analysis: { inference: 'main' }, old: true },
  batch: { analysis: { batchWaitMs: 2 } },
  high: { analysis: { layer: 'high' } },
  new: { analysis: {} },
  alternate: { analysis: { mirror: 'alternate' } },
  'every-frame': { analysis: { redetect: { every: 1, motion: 0 } } },
};

async function run(n: number, setup: string): Promise<Record<string, number | boolean | string>> {
  const cfg = defaults();
  const setupOf = SETUPS[setup];
  if (!setupOf) throw new Error(`unknown setup ${setup}: one of ${Object.keys(SETUPS).join(', ')}`);
  const over = setupOf.analysis;
  const threads = threadsArg ? Number(threadsArg) : (setupOf.threads ?? cfg.runtime.threads);
  const s = await serve(
    {
      ...cfg,
      models:
        setupOf.old && oldDir
          ? { ...cfg.models, encoder: join(oldDir, 'arpgnet-edge.encoder.onnx'), head: join(oldDir, 'arpgnet-edge.head.onnx') }
          : cfg.models,
      analysis: { ...cfg.analysis, fps, ...over, ...(maxSide ? { maxSide } : {}) },
      runtime: { ...cfg.runtime, providers: ['cpu'], threads },
      serve: { ...cfg.serve, port: 0, maxStreams: n },
      sfu: { ...cfg.sfu, workers: 1 },
    },
    silentLogger,
  );
  const sub = await subscribeEvents(s.url);
  const senders: Array<{ stop: () => void }> = [];
  const relays = simulcast ? RelayHost.start() : null;
  const peers: TestPeer[] = [];
  const created = new Map<string, number>();
  try {
    for (let i = 0; i < n; i++) {
      const peer = await TestPeer.open(s.url);
      peers.push(peer);
      await peer.request('join', { room: `bench-${Math.floor(i / perRoom)}`, name: `sender-${i}`, consent: true });
      const p = await publishClip(peer, 1000 + i, {
        clip: h264Clip(CLIPS[i % CLIPS.length], senderSide),
        ...(simulcast
          ? { lowLayer: { clip: h264Clip(CLIPS[i % CLIPS.length], Math.round((senderSide ?? 480) / 2)), scale: 2, relays: relays! } }
          : {}),
        appData: { width: 512, height: 512 },
      });
      senders.push(p);
      created.set(p.producerId, performance.now());
    }
    const firstEvent = new Map<string, number>();
    const seen = (e: PipelineEvent): void => {
      if (e.type === 'emotion' && !firstEvent.has(e.stream)) firstEvent.set(e.stream, performance.now());
    };
    const timer = setInterval(() => sub.got.forEach(seen), 20);
    await until(() => firstEvent.size === n, 60_000, 'a first event on every stream');
    clearInterval(timer);
    const firstMs = [...created].map(([id, t]) => firstEvent.get(id)! - t);
    // measure a steady window
    const workerPid = processes('mediasoup-worker')[0] ?? 0;
    const parts = (): { node: number; decoders: number; sfu: number } => ({
      node: procCpuMs(process.pid),
      decoders: processes('arpgnet-rtp-').reduce((a, p) => a + procCpuMs(p), 0),
      sfu: procCpuMs(workerPid),
    });
    const serverSide = (): number => Object.values(parts()).reduce((a, b) => a + b, 0);
    const parts0 = parts();
    const startIdx = sub.got.length;
    const stats0 = new Map(s.analyser!.streams().map((x) => [x.stream, x]));
    const cpu0 = serverSide();
    // how late the main thread runs what is queued on it (signaling, routing, events)
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const wall = performance.now() - t0;
    lag.disable();
    const cpu = serverSide() - cpu0;
    const parts1 = parts();
    const share = (k: keyof typeof parts0): number => Math.round(((parts1[k] - parts0[k]) / wall) * 100);
    const window = sub.got.slice(startIdx).filter((e): e is EmotionEvent => e.type === 'emotion');
    const lat = window.map((e) => e.latencyMs);
    const streams = s.analyser!.streams();
    const perStream = (k: 'decoded' | 'analysed'): number =>
      streams.reduce((a, x) => a + (x[k] - (stats0.get(x.stream)?.[k] ?? 0)), 0) / n / (wall / 1000);
    const decodedFps = perStream('decoded');
    const analysedFps = perStream('analysed');
    // fairness under load: each stream's own analysed rate, and the frames its decoder dropped
    const own = streams.map((x) => (x.analysed - (stats0.get(x.stream)?.analysed ?? 0)) / (wall / 1000));
    const droppedEach = streams.map((x) => x.dropped - (stats0.get(x.stream)?.dropped ?? 0));
    const a = { ...cfg.analysis, ...over };
    return {
      setup,
      models: setupOf.old && oldDir ? oldDir : 'models',
      inference: a.inference,
      detector: a.detector,
      landmarkWorkers: a.landmarkWorkers,
      batchWaitMs: a.batchWaitMs,
      threads,
      streams: n,
      firstEventMsMedian: Math.round(pct(firstMs, 50)),
      firstEventMsMax: Math.round(Math.max(...firstMs)),
      cpuPercentPerStream: Math.round((cpu / wall / n) * 100),
      cpuPercentTotal: Math.round((cpu / wall) * 100),
      cpuPercentNode: share('node'),
      cpuPercentDecoders: share('decoders'),
      cpuPercentSfu: share('sfu'),
      // server side (Node, decoders, mediasoup worker) per analysed frame: comparable across machines per core
      cpuSecondsPerAnalysedFrame: +(cpu / 1000 / (analysedFps * n * (wall / 1000))).toFixed(4),
      eventLoopLagMsP99: +(lag.percentile(99) / 1e6).toFixed(1),
      eventLoopLagMsMax: +(lag.max / 1e6).toFixed(1),
      latencyP50: Math.round(pct(lat, 50)),
      latencyP95: Math.round(pct(lat, 95)),
      decodedFpsPerStream: +decodedFps.toFixed(1),
      analysedFpsPerStream: +analysedFps.toFixed(1),
      analysedFpsMin: +Math.min(...own).toFixed(1),
      analysedFpsMax: +Math.max(...own).toFixed(1),
      droppedFramesMin: Math.min(...droppedEach),
      droppedFramesMax: Math.max(...droppedEach),
      senderSide: senderSide ?? 0,
      simulcast,
      layer: s.sfu!.placement.streams()[0]?.layer ?? 'none',
      maxSide: maxSide ?? cfg.analysis.maxSide,
      eventsDropped: s.gateway!.droppedTotal,
      decoderRestarts: streams.reduce((a, x) => a + x.restarts, 0),
      ok: pct(lat, 95) <= 150 && analysedFps >= 0.9 * fps,
    };
  } finally {
    for (const p of senders) p.stop();
    relays?.close();
    for (const p of peers) p.close();
    sub.ws.close();
    await s.close();
  }
}

const list = (v: string | null): number[] | null => (v ? v.split(',').map(Number) : null);
const step = arg('--step', '');
if (step) {
  // one setup at one stream count, in a process of its own (see below)
  const [setup, n] = step.split(':');
  process.stdout.write(`${JSON.stringify(await run(Number(n), setup!))}\n`);
  process.exit(0);
}

/**
 * Each step runs in a fresh process: in one long process a step paid for the ones
 * before it (the last setup measured more CPU per frame than the same setup alone).
 */
function runStep(setup: string, n: number): Record<string, number | boolean | string> {
  // the same options; a step reads only its own (--setups and --streams are the parent's)
  const out = execFileSync(process.execPath, [...process.execArgv, process.argv[1]!, ...process.argv.slice(2), '--step', `${setup}:${n}`], {
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 24,
  });
  return JSON.parse(out.toString().trim().split('\n').at(-1)!) as Record<string, number | boolean | string>;
}

const setups = arg('--setups', 'old,new').split(',');
const counts = list(arg('--streams', '')) ?? (max ? null : [5, 10]);
const rows: Array<Record<string, number | boolean | string>> = [];
const held: Record<string, number> = {};
for (const setup of setups) {
  for (const n of counts ?? Array.from({ length: max ?? 10 }, (_, i) => i + 1)) {
    const r = runStep(setup, n);
    rows.push(r);
    process.stderr.write(`${JSON.stringify(r)}\n`);
    if (r['ok']) held[setup] = Math.max(held[setup] ?? 0, n);
    else if (!counts) break;
  }
}
process.stdout.write(
  JSON.stringify(
    {
      command: `npm run bench:serve -- ${process.argv.slice(2).join(' ')}`.trim(),
      commit: commit(),
      seed: null,
      analysisFps: fps,
      cpus: (await import('node:os')).cpus().length,
      maxStreamsWithin150msP95: held,
      runs: rows,
    },
    null,
    2,
  ) + '\n',
);
