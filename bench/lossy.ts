/**
 * Lossy networks: one analysed call stream sent by ffmpeg through a loopback UDP relay
 * that drops, reorders and delays packets on their way to the SFU; prints JSON.
 *
 *   npm run bench:lossy -- [--loss 0,1,5,10] [--seconds 30] [--reorder 1] [--delay 20] [--jitter 10] [--seed 1]
 *
 * Per loss level (percent of RTP packets dropped): ms from produce to the first
 * emotion event, emotion events per second over the steady window, frame-to-event
 * latency (decoded frame leaving the decoder -> event published), frames decoded per
 * second, decoder restarts. The sender is plain RTP without retransmission or FEC (a
 * gateway or a camera); a browser would also repair losses with NACK and key-frame
 * requests, so these are the harder case.
 */
import { defaults } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import type { EmotionEvent } from '../src/publish/events.js';
import { serve } from '../src/roles/serve.js';
import { publishClip, subscribeEvents, TestPeer, until, type PlainTransportInfo } from './lib/call.js';
import { arg, commit, pct } from './lib/measure.js';
import { UdpRelay } from './lib/udp-relay.js';

const levels = arg('--loss', '0,1,5,10').split(',').map(Number);
const seconds = Number(arg('--seconds', '30'));
const reorder = Number(arg('--reorder', '1')) / 100;
const delayMs = Number(arg('--delay', '20'));
const jitterMs = Number(arg('--jitter', '10'));
const seed = Number(arg('--seed', '1'));

const cfg = defaults();
const s = await serve(
  { ...cfg, runtime: { ...cfg.runtime, providers: ['cpu'] }, serve: { ...cfg.serve, port: 0 }, sfu: { ...cfg.sfu, workers: 1 } },
  silentLogger,
);
const rows: Array<Record<string, number>> = [];
try {
  for (const [k, loss] of levels.entries()) {
    const room = `lossy-${loss}`;
    const sub = await subscribeEvents(s.url, `?room=${room}`);
    const peer = await TestPeer.open(s.url);
    await peer.request('join', { room, name: 'sender', consent: true });
    const t = await peer.request<PlainTransportInfo>('createPlainTransport');
    const relay = await UdpRelay.open({ ip: t.ip, port: t.port }, { loss: loss / 100, reorder, delayMs, jitterMs, seed: seed + k });
    const t0 = performance.now();
    const { producerId: id, sender } = await publishClip(peer, 3000 + k, { transport: t, to: { ip: '127.0.0.1', port: relay.port } });
    try {
      const emotions = (): EmotionEvent[] => sub.got.filter((e): e is EmotionEvent => e.type === 'emotion' && e.stream === id);
      await until(() => emotions().length > 0, 120_000, `a first event at ${loss} % loss`);
      const firstMs = performance.now() - t0;
      const from = emotions().length;
      const st0 = s.analyser!.streams().find((x) => x.stream === id);
      const w0 = performance.now();
      await new Promise((r) => setTimeout(r, seconds * 1000));
      const wall = (performance.now() - w0) / 1000;
      const window = emotions().slice(from);
      const st = s.analyser!.streams().find((x) => x.stream === id);
      const lat = window.map((e) => e.latencyMs);
      rows.push({
        lossPercent: loss,
        firstEventMs: Math.round(firstMs),
        eventsPerSecond: +(window.length / wall).toFixed(2),
        latencyP50: Math.round(pct(lat, 50)),
        latencyP95: Math.round(pct(lat, 95)),
        decodedFps: +(((st?.decoded ?? 0) - (st0?.decoded ?? 0)) / wall).toFixed(1),
        decoderRestarts: st?.restarts ?? 0,
        packetsDropped: relay.stats.dropped,
        packetsReordered: relay.stats.reordered,
        packetsForwarded: relay.stats.forwarded,
      });
      process.stderr.write(`${JSON.stringify(rows.at(-1))}\n`);
    } finally {
      sender.kill('SIGKILL');
      relay.close();
      peer.close();
      sub.ws.close();
    }
  }
} finally {
  await s.close();
}

process.stdout.write(
  `${JSON.stringify(
    {
      command: `npm run bench:lossy -- ${process.argv.slice(2).join(' ')}`.trim(),
      commit: commit(),
      seed,
      seconds,
      reorderPercent: reorder * 100,
      delayMs,
      jitterMs,
      analysisFps: cfg.analysis.fps,
      levels: rows,
    },
    null,
    2,
  )}\n`,
);
