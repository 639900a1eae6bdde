/**
 * Churn soak: participants join, publish a real clip over RTP, toggle consent, pause,
 * and leave every few seconds against a server running in its own process, while
 * subscribers come and go on /events. Samples the server's memory, event-loop lag,
 * handles, child processes, mediasoup objects and UDP ports, and compares the end with
 * the start once everyone has left.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { ROOT } from '../../src/paths.js';
import { publishClip, subscribeEvents, TestPeer } from './call.js';
import { processTree, udpPorts } from './measure.js';
import { nativeMemory, type NativeMemory } from './memory.js';
import { seeded } from './udp-relay.js';

export interface SoakOptions {
  minutes: number;
  /** Participant loops running at once. */
  participants: number;
  seed: number;
  /** Seconds between samples. */
  sampleSeconds: number;
  /** Merged over the server's config (bisecting: detector, workers, actions). */
  config?: Record<string, Record<string, unknown>> | undefined;
  /** Extra environment for the server (bisecting the allocator: MALLOC_ARENA_MAX, LD_PRELOAD). */
  env?: Record<string, string> | undefined;
  /** Subscribers ask for facial actions (?actions=1), so MediaPipe runs beside YuNet. */
  actions?: boolean | undefined;
  log?: (line: string) => void;
}

interface Media {
  routers: number;
  transports: number;
  producers: number;
  consumers: number;
}

export interface Sample {
  t: number;
  rssMB: number;
  /** V8's heap alone: RSS growing while this stays flat points at native memory (wasm, onnxruntime, buffers). */
  heapMB: number;
  /** The main isolate's memory outside its heap (Buffers, SharedArrayBuffers). */
  externalMB: number;
  /** Each face worker thread's V8 heap (from /metrics). */
  workerHeapMB: number[];
  /** The server process's resident memory by kind (bench/lib/memory.ts). */
  native: NativeMemory;
  lagP99Ms: number;
  handles: number;
  children: number;
  udpPorts: number;
  media: Media;
  rooms: number;
  streams: number;
}

export interface SoakReport {
  minutes: number;
  participants: number;
  seed: number;
  cycles: number;
  failedCycles: number;
  events: number;
  start: Sample;
  end: Sample;
  /** Least-squares slope of RSS over the run after its first fifth (warm-up), MB per minute. */
  rssSlopeMBPerMin: number;
  /** The same slope for each kind of native memory, and for V8's heaps: which one grows. */
  slopes: Record<string, number>;
  lagP99MsMax: number;
  /** What did not come back to its start value once every participant had left. */
  leaks: string[];
  samples: Sample[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const rssMB = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : NaN;
};

const metric = (text: string, name: string): number => {
  const m = new RegExp(`^${name} ([\\d.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
};

const mb = (bytes: number): number => Math.round((bytes / 2 ** 20) * 10) / 10;

function workerHeaps(text: string): number[] {
  const out: number[] = [];
  for (const m of text.matchAll(/^arpgnet_worker_memory_bytes\{worker="(\d+)",kind="heap"\} ([\d.e+-]+)$/gm))
    out[Number(m[1])] = mb(Number(m[2]));
  return out;
}

async function sample(url: string, pid: number, t0: number): Promise<Sample> {
  const [health, metrics] = await Promise.all([
    fetch(`${url}/healthz`).then(async (r) => ((await r.json()) as { sfu: { rooms: number; streams: unknown[]; media: Media } }).sfu),
    fetch(`${url}/metrics`).then((r) => r.text()),
  ]);
  const pids = processTree([pid]);
  return {
    t: Math.round((performance.now() - t0) / 1000),
    rssMB: rssMB(pid),
    heapMB: mb(metric(metrics, 'arpgnet_nodejs_heap_size_used_bytes')),
    externalMB: mb(metric(metrics, 'arpgnet_nodejs_external_memory_bytes')),
    workerHeapMB: workerHeaps(metrics),
    native: nativeMemory(pid),
    lagP99Ms: Math.round(metric(metrics, 'arpgnet_nodejs_eventloop_lag_p99_seconds') * 1000 * 10) / 10,
    handles: metric(metrics, 'arpgnet_nodejs_active_handles_total'),
    children: pids.length - 1,
    udpPorts: udpPorts(pids),
    media: health.media,
    rooms: health.rooms,
    streams: health.streams.length,
  };
}

/** The server in its own process (bench/lib/serve-child.ts), one mediasoup worker, CPU only. */
async function startChild(o: SoakOptions): Promise<{ url: string; pid: number; proc: ChildProcess }> {
  const base: Record<string, Record<string, unknown>> = {
    serve: { port: 0, maxStreams: 4 },
    sfu: { workers: 1 },
    runtime: { providers: ['cpu'] },
  };
  for (const [k, v] of Object.entries(o.config ?? {})) base[k] = { ...base[k], ...v };
  const proc = spawn(process.execPath, ['--import', 'tsx', 'bench/lib/serve-child.ts'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...o.env, ARPGNET_TEST_CONFIG: JSON.stringify(base) },
  });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout! });
    rl.once('line', resolve);
    proc.once('exit', (code) => reject(new Error(`the server exited (${code}) before it listened`)));
  });
  return { ...(JSON.parse(line) as { url: string; pid: number }), proc };
}

/** One participant's life: join, publish, toggle consent, maybe pause, leave one way or another. */
async function cycle(url: string, rand: () => number, ssrc: number): Promise<void> {
  const room = `soak-${Math.floor(rand() * 2)}`;
  const peer = await TestPeer.open(url);
  let sender: ChildProcess | null = null;
  try {
    await peer.request('join', { room, name: `p${ssrc}`, consent: rand() < 0.7 });
    const p = await publishClip(peer, ssrc);
    sender = p.sender;
    const id = p.producerId;
    await sleep(1500 + rand() * 3000);
    await peer.request('setConsent', { consent: rand() < 0.5 });
    if (rand() < 0.3) {
      await peer.request('pauseProducer', { producerId: id });
      await sleep(500 + rand() * 1000);
      await peer.request('resumeProducer', { producerId: id });
    }
    await sleep(1000 + rand() * 2000);
    // leave politely, or just vanish (socket closed mid-call)
    if (rand() < 0.5) await peer.request('leave');
  } finally {
    sender?.kill('SIGKILL');
    peer.close();
  }
}

export async function soak(o: SoakOptions): Promise<SoakReport> {
  const log = o.log ?? (() => undefined);
  const rand = seeded(o.seed);
  const server = await startChild(o);
  const t0 = performance.now();
  const samples: Sample[] = [];
  let cycles = 0;
  let failedCycles = 0;
  let events = 0;
  try {
    // warm up once (model sessions, first decoder), then take the baseline with nobody in
    await cycle(server.url, rand, 100);
    await sleep(3000);
    const start = await sample(server.url, server.pid, t0);
    samples.push(start);
    log(`start ${JSON.stringify(start)}`);
    const until = performance.now() + o.minutes * 60_000;
    const loops = Array.from({ length: o.participants }, async (_, k) => {
      let n = 0;
      while (performance.now() < until) {
        try {
          await cycle(server.url, rand, 1000 + k * 10_000 + (n++ % 10_000));
          cycles++;
        } catch (e) {
          failedCycles++;
          log(`cycle failed: ${(e as Error).message}`);
        }
      }
    });
    // subscribers come and go on /events too
    const subs = (async () => {
      while (performance.now() < until) {
        const sub = await subscribeEvents(server.url, `?room=soak-${Math.floor(rand() * 2)}${o.actions ? '&actions=1' : ''}`);
        await sleep(2000 + rand() * 4000);
        events += sub.got.length;
        sub.ws.close();
      }
    })();
    const sampler = (async () => {
      while (performance.now() < until) {
        await sleep(o.sampleSeconds * 1000);
        const s = await sample(server.url, server.pid, t0);
        samples.push(s);
        log(JSON.stringify(s));
      }
    })();
    await Promise.all([...loops, subs, sampler]);
    // everyone has left: give the server a moment to close what they held
    let end = await sample(server.url, server.pid, t0);
    for (let i = 0; i < 20 && (end.children !== start.children || end.media.transports !== start.media.transports); i++) {
      await sleep(500);
      end = await sample(server.url, server.pid, t0);
    }
    samples.push(end);
    log(`end ${JSON.stringify(end)}`);
    const warm = samples.slice(Math.floor(samples.length / 5));
    const leaks: string[] = [];
    const same = (what: string, a: number, b: number): void => void (a !== b && leaks.push(`${what}: ${a} -> ${b}`));
    same('child processes', start.children, end.children);
    same('udp ports', start.udpPorts, end.udpPorts);
    same('rooms', start.rooms, end.rooms);
    same('analysed streams', start.streams, end.streams);
    for (const k of ['routers', 'transports', 'producers', 'consumers'] as const) same(k, start.media[k], end.media[k]);
    return {
      minutes: o.minutes,
      participants: o.participants,
      seed: o.seed,
      cycles,
      failedCycles,
      events,
      start,
      end,
      rssSlopeMBPerMin: perMin(warm, (s) => s.rssMB),
      slopes: {
        ...Object.fromEntries((Object.keys(start.native) as Array<keyof NativeMemory>).map((k) => [k, perMin(warm, (s) => s.native[k])])),
        mainHeap: perMin(warm, (s) => s.heapMB),
        external: perMin(warm, (s) => s.externalMB),
        workerHeaps: perMin(warm, (s) => s.workerHeapMB.reduce((a, b) => a + b, 0)),
      },
      lagP99MsMax: Math.max(...samples.map((s) => s.lagP99Ms)),
      leaks,
      samples,
    };
  } finally {
    server.proc.kill('SIGTERM');
    await new Promise((r) => server.proc.once('exit', r));
  }
}

/** MB per minute of one reading over the samples. */
const perMin = (samples: Sample[], y: (s: Sample) => number): number => Math.round(slope(samples.map((s) => [s.t / 60, y(s)])) * 100) / 100;

/** Least-squares slope of y over x. */
function slope(pts: Array<[number, number]>): number {
  const n = pts.length;
  if (n < 2) return 0;
  const mx = pts.reduce((a, [x]) => a + x, 0) / n;
  const my = pts.reduce((a, [, y]) => a + y, 0) / n;
  const sxy = pts.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const sxx = pts.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return sxx ? sxy / sxx : 0;
}
