/**
 * Live-call benchmark: real face clips sent as RTP by ffmpeg into the SFU on loopback,
 * each analysed as its own stream; prints JSON.
 *
 *   npm run bench:serve -- [--fps 10] [--seconds 20] [--max 6] [--threads 2] [--setups old,1.2,new] [--streams 4,6,8] [--sender-side 320] [--max-side 320]
 *
 * --setups: configurations measured in turn in one run (SETUPS below: `old` is MediaPipe on
 * the main thread as before 1.2.0, `1.2` MediaPipe on worker threads, `nobatch` today's
 * default without encoder batching, `new` today's default); --streams: the stream
 * counts to try (default 1..max, stopping at the first that fails).
 *
 * For 1, 2, ... concurrent streams: producer created -> first emotion event, CPU of
 * the server side (Node process + decoder processes + mediasoup worker; the senders
 * are not counted) per analysed stream, and frame-to-event latency (decoded frame
 * leaving the decoder -> event published). Stops at the first count whose p95 goes
 * over 150 ms or whose analysed rate falls below 90 % of --fps.
 */
import type { ChildProcess } from 'node:child_process';
import { defaults, type Config } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import type { EmotionEvent, PipelineEvent } from '../src/publish/events.js';
import { startServer } from '../src/serve/server.js';
import { h264Clip, publishClip, subscribeEvents, TestPeer, until } from './lib/call.js';
import { processes } from './lib/clips.js';
import { arg, pct, procCpuMs } from './lib/measure.js';

const fps = Number(arg('--fps', '10'));
const seconds = Number(arg('--seconds', '20'));
const max = Number(arg('--max', '6'));
const threads = Number(arg('--threads', '2'));
/** Longest side of the analysed picture (analysis.maxSide; default 640). */
const maxSide = arg('--max-side', '') ? Number(arg('--max-side', '')) : undefined;
/** Longest side of what the senders send (default: the clips' own): a small one stands for a low simulcast layer. */
const senderSide = arg('--sender-side', '') ? Number(arg('--sender-side', '')) : undefined;
const CLIPS = ['d18', 'd19', 'd20', 'd11', 'd12', 'd18', 'd19', 'd20'];

type Analysis = Config['analysis'];
const SETUPS: Record<string, Partial<Analysis>> = {
  old: { detector: 'mediapipe', landmarkWorkers: 0, batchWaitMs: 0 },
  '1.2': { detector: 'mediapipe', batchWaitMs: 0 },
  nobatch: { batchWaitMs: 0 },
  new: {},
};

async function run(n: number, setup: string): Promise<Record<string, number | boolean | string>> {
  const cfg = defaults();
  const over = SETUPS[setup];
  if (!over) throw new Error(`unknown setup ${setup}: one of ${Object.keys(SETUPS).join(', ')}`);
  const s = await startServer(
    {
      ...cfg,
      analysis: { ...cfg.analysis, fps, ...over, ...(maxSide ? { maxSide } : {}) },
      runtime: { ...cfg.runtime, providers: ['cpu'], threads },
      serve: { ...cfg.serve, port: 0, maxStreams: n },
      sfu: { ...cfg.sfu, workers: 1 },
    },
    silentLogger,
  );
  const sub = await subscribeEvents(s.url);
  const senders: ChildProcess[] = [];
  const peers: TestPeer[] = [];
  const created = new Map<string, number>();
  try {
    for (let i = 0; i < n; i++) {
      const peer = await TestPeer.open(s.url);
      peers.push(peer);
      await peer.request('join', { room: 'bench', name: `sender-${i}`, consent: true });
      const p = await publishClip(peer, 1000 + i, {
        clip: h264Clip(CLIPS[i % CLIPS.length], senderSide),
        appData: { width: 512, height: 512 },
      });
      senders.push(p.sender);
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
    const stats0 = new Map(s.live.streams().map((x) => [x.producerId, x]));
    const cpu0 = serverSide();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const wall = performance.now() - t0;
    const cpu = serverSide() - cpu0;
    const parts1 = parts();
    const share = (k: keyof typeof parts0): number => Math.round(((parts1[k] - parts0[k]) / wall) * 100);
    const window = sub.got.slice(startIdx).filter((e): e is EmotionEvent => e.type === 'emotion');
    const lat = window.map((e) => e.latencyMs);
    const streams = s.live.streams();
    const perStream = (k: 'decoded' | 'analysed'): number =>
      streams.reduce((a, x) => a + (x[k] - (stats0.get(x.producerId)?.[k] ?? 0)), 0) / n / (wall / 1000);
    const decodedFps = perStream('decoded');
    const analysedFps = perStream('analysed');
    const a = { ...cfg.analysis, ...over };
    return {
      setup,
      detector: a.detector,
      landmarkWorkers: a.landmarkWorkers,
      batchWaitMs: a.batchWaitMs,
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
      latencyP50: Math.round(pct(lat, 50)),
      latencyP95: Math.round(pct(lat, 95)),
      decodedFpsPerStream: +decodedFps.toFixed(1),
      analysedFpsPerStream: +analysedFps.toFixed(1),
      senderSide: senderSide ?? 0,
      maxSide: maxSide ?? cfg.analysis.maxSide,
      eventsDropped: s.hub.droppedTotal,
      decoderRestarts: streams.reduce((a, x) => a + x.restarts, 0),
      ok: pct(lat, 95) <= 150 && analysedFps >= 0.9 * fps,
    };
  } finally {
    for (const p of senders) p.kill('SIGKILL');
    for (const p of peers) p.close();
    sub.ws.close();
    await s.close();
  }
}

const list = (v: string | null): number[] | null => (v ? v.split(',').map(Number) : null);
const setups = arg('--setups', 'new').split(',');
const counts = list(arg('--streams', ''));
const rows: Array<Record<string, number | boolean | string>> = [];
const held: Record<string, number> = {};
for (const setup of setups) {
  for (const n of counts ?? Array.from({ length: max }, (_, i) => i + 1)) {
    const r = await run(n, setup);
    rows.push(r);
    process.stderr.write(`${JSON.stringify(r)}\n`);
    if (r['ok']) held[setup] = Math.max(held[setup] ?? 0, n);
    else if (!counts) break;
  }
}
process.stdout.write(
  JSON.stringify(
    {
      analysisFps: fps,
      threads,
      cpus: (await import('node:os')).cpus().length,
      maxStreamsWithin150msP95: held,
      runs: rows,
    },
    null,
    2,
  ) + '\n',
);
