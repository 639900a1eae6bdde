/**
 * Scale-out benchmark: NATS (JetStream), one SFU, 1 and then 2 analyser processes and
 * a gateway, all on this machine; real face clips sent as RTP by ffmpeg into the SFU,
 * events read through the gateway. Prints JSON.
 *
 *   npm run bench:cluster -- [--analysers 1,2] [--streams 1,2,3,4] [--seconds 15] [--max-streams 8]
 *
 * Per analyser count and stream count: frame-to-event p50/p95 (decoded frame leaving
 * the decoder -> event published by the analyser), events per second per stream (one
 * face per clip: the analysed rate), and CPU of the whole cluster (NATS, SFU with its
 * mediasoup worker, analysers with their decoders, gateway; not the senders) per
 * stream. A count is held when p95 <= 150 ms and at least 90 % of 10 fps arrive.
 */
import type { ChildProcess } from 'node:child_process';
import { WebSocket } from 'ws';
import type { EmotionEvent, PipelineEvent } from '../src/publish/events.js';
import { clusterConfig, startNats, startRole, type RoleProcess } from './lib/cluster.js';
import { h264Clip, publishClip, TestPeer, until } from './lib/call.js';
import { arg, commit, pct, processTree, procCpuMs } from './lib/measure.js';

const analyserCounts = arg('--analysers', '1,2').split(',').map(Number);
const streamCounts = arg('--streams', '1,2,3,4').split(',').map(Number);
const seconds = Number(arg('--seconds', '15'));
/** Streams each analyser takes (serve.maxStreams): past it a stream waits for capacity instead of loading the box. */
const maxStreams = Number(arg('--max-streams', '8'));
const fps = 10;
const CLIPS = ['d18', 'd19', 'd20', 'd11', 'd12'];

async function run(nAnalysers: number, nStreams: number): Promise<Record<string, number | boolean>> {
  const nats = await startNats();
  const config = clusterConfig({ serve: { maxStreams }, analysis: { landmarkWorkers: 1, fps } });
  const roles: RoleProcess[] = [];
  const senders: ChildProcess[] = [];
  const peers: TestPeer[] = [];
  try {
    const sfu = await startRole('sfu', nats.url, config);
    roles.push(sfu);
    roles.push(...(await Promise.all(Array.from({ length: nAnalysers }, () => startRole('analyser', nats.url, config)))));
    const gw = await startRole('gateway', nats.url, config);
    roles.push(gw);
    const got: PipelineEvent[] = [];
    // every room's events: the senders are spread over rooms of 10
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/events`);
    ws.on('message', (d) => got.push(JSON.parse(String(d)) as PipelineEvent));
    await new Promise((r) => ws.once('open', r));
    const sfuSees = async (): Promise<number> =>
      ((await (await fetch(`${sfu.url}/healthz`)).json()) as { sfu: { analysers: unknown[] } }).sfu.analysers.length;
    const t0 = Date.now();
    while ((await sfuSees()) < nAnalysers && Date.now() - t0 < 15_000) await new Promise((r) => setTimeout(r, 100));
    const created = new Map<string, number>();
    for (let i = 0; i < nStreams; i++) {
      const peer = await TestPeer.open(sfu.url);
      peers.push(peer);
      // a room holds at most 16 peers
      await peer.request('join', { room: `bench-${Math.floor(i / 10)}`, name: `sender-${i}`, consent: true });
      const p = await publishClip(peer, 4000 + i, { clip: h264Clip(CLIPS[i % CLIPS.length]), appData: { width: 512, height: 512 } });
      senders.push(p.sender);
      created.set(p.producerId, performance.now());
    }
    const firstAt = new Map<string, number>();
    await until(
      () => {
        for (const e of got) if (e.type === 'emotion' && !firstAt.has(e.stream)) firstAt.set(e.stream, performance.now());
        return firstAt.size === nStreams;
      },
      90_000,
      () => `a first event on every stream (${firstAt.size} of ${nStreams})`,
    ).catch((e: unknown) => {
      // what the roles warned of says why a stream never got its first event
      for (const r of roles) for (const l of r.log.filter((x) => /"level":(4|5)0/.test(x)).slice(-20)) process.stderr.write(`${l}\n`);
      throw e;
    });
    const pids = (): number[] => processTree([nats.proc.pid!, ...roles.map((r) => r.pid)]);
    const cpuNow = (): number => pids().reduce((a, p) => a + procCpuMs(p), 0);
    const from = got.length;
    const cpu0 = cpuNow();
    const w0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const wall = (performance.now() - w0) / 1000;
    const cpu = cpuNow() - cpu0;
    const window = got.slice(from).filter((e): e is EmotionEvent => e.type === 'emotion');
    const lat = window.map((e) => e.latencyMs);
    const perStream = window.length / nStreams / wall;
    ws.close();
    const firstMs = [...created].map(([id, t]) => (firstAt.get(id) ?? NaN) - t);
    return {
      analysers: nAnalysers,
      streams: nStreams,
      firstEventMsMedian: Math.round(pct(firstMs, 50)),
      latencyP50: Math.round(pct(lat, 50)),
      latencyP95: Math.round(pct(lat, 95)),
      eventsPerSecondPerStream: +perStream.toFixed(1),
      clusterCpuPercentPerStream: Math.round((cpu / 1000 / wall / nStreams) * 100),
      clusterCpuPercentTotal: Math.round((cpu / 1000 / wall) * 100),
      ok: pct(lat, 95) <= 150 && perStream >= 0.9 * fps,
    };
  } finally {
    for (const s of senders) s.kill('SIGKILL');
    for (const p of peers) p.close();
    for (const r of roles) await r.stop();
    await nats.stop();
  }
}

const rows: Array<Record<string, number | boolean>> = [];
const held: Record<string, number> = {};
for (const a of analyserCounts) {
  held[`analysers=${a}`] = 0;
  for (const n of streamCounts) {
    const r = await run(a, n);
    rows.push(r);
    process.stderr.write(`${JSON.stringify(r)}\n`);
    if (r['ok']) held[`analysers=${a}`] = n;
    else break;
  }
}
process.stdout.write(
  `${JSON.stringify(
    {
      command: `npm run bench:cluster -- ${process.argv.slice(2).join(' ')}`.trim(),
      commit: commit(),
      analysisFps: fps,
      seconds,
      cpus: (await import('node:os')).cpus().length,
      maxStreamsWithin150msP95: held,
      runs: rows,
    },
    null,
    2,
  )}\n`,
);
