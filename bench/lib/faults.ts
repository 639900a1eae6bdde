/**
 * The fault run: participants in their own rooms publish real clips for minutes at a
 * time on one server (every role in one process, NATS with JetStream as the bus), each
 * room watched by the typed client, while faults are injected at random times: a
 * mediasoup worker killed (its rooms close, their participants rejoin), a decoder
 * killed (the analyser restarts it), NATS killed and started again on its store. For
 * each fault: how long until every room that was live has an emotion event again.
 * At the end: every seq the rooms' logs handed out either reached its subscriber or
 * was named by a gap, and nothing the participants held is still open.
 */
import { readFileSync } from 'node:fs';
import { WebSocket } from 'ws';
import { EventsClient, type HubEvent, type SocketFactory } from '../../src/client/index.js';
import { publishClip, TestPeer } from './call.js';
import { clusterConfig, startNats, startRole } from './cluster.js';
import { processTree } from './measure.js';
import { seeded } from './udp-relay.js';

export type FaultKind = 'mediasoup-worker' | 'decoder' | 'bus';

export interface FaultOptions {
  minutes: number;
  participants: number;
  seed: number;
  /** Seconds between one fault's recovery and the next fault, drawn uniformly. */
  gapSeconds: readonly [number, number];
  log?: (line: string) => void;
  /** The server's own log lines (pino JSON), as they come. */
  serverLog?: ((line: string) => void) | undefined;
}

export interface FaultRecord {
  kind: FaultKind;
  atS: number;
  target: string;
  /** Rooms the fault hit: live ones (an emotion event in the 3 s before) that depend on what broke. */
  liveRooms: number;
  /**
   * From the fault until the last of them had an event from what replaced the broken part
   * (a new stream after a worker death, the restarted decoder, NATS back); null: one did
   * not within RESUME_LIMIT_MS.
   */
  resumedWithinMs: number | null;
}

export interface FaultReport {
  minutes: number;
  participants: number;
  seed: number;
  faults: FaultRecord[];
  byKind: Record<FaultKind, { injected: number; resumed: number; resumedWithinMsMax: number | null }>;
  rejoins: number;
  cycles: number;
  failedCycles: number;
  emotionEvents: number;
  /** Seqs of the rooms' logs that neither arrived nor were named by a gap. */
  eventsLost: number;
  /** Seqs named by gaps (the client was told what it cannot have). */
  eventsInGaps: number;
  /** Events the analyser gave up writing to the log, and attempts it had to repeat (/metrics). */
  logFailed: number;
  logRetried: number;
  clientReconnects: number;
  /** Per room, silences over 5 s between emotion events (a participant between calls, or a stall): [at s, ms]. */
  silences: Record<string, Array<[number, number]>>;
  /** What was still open once every participant had left. */
  end: { rooms: number; peers: number; transports: number; producers: number; streams: number; decoders: number };
  leaks: string[];
}

const RESUME_LIMIT_MS = 60_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface RoomWatch {
  room: string;
  client: EventsClient;
  seqs: Set<number>;
  gaps: Array<[number, number]>;
  lastEmotionAt: number;
  emotions: number;
  /** Each stream's latest emotion event, by when it arrived. */
  lastByStream: Map<string, number>;
  /** Silences of more than SILENCE_MS between two emotion events of the room, [from s, length ms]. */
  silences: Array<[number, number]>;
}

const SILENCE_MS = 5000;

const Socket = WebSocket as unknown as SocketFactory;

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

const metric = (text: string, name: string): number => Number(new RegExp(`^${name} ([\\d.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN);

export async function faultRun(o: FaultOptions): Promise<FaultReport> {
  const log = o.log ?? (() => undefined);
  const rand = seeded(o.seed);
  const nats = await startNats();
  const config = clusterConfig({
    serve: { maxStreams: o.participants + 2, decoderRestarts: 50 },
    analysis: { fps: 10 },
  });
  const server = await startRole('all', nats.url, config);
  if (o.serverLog) server.proc.stderr!.on('data', (d: Buffer) => o.serverLog!(d.toString()));
  const health = async (): Promise<{ sfu: Record<string, unknown>; analyser: Record<string, unknown> }> =>
    (await fetch(`${server.url}/healthz`)).json() as Promise<{ sfu: Record<string, unknown>; analyser: Record<string, unknown> }>;
  const t0 = performance.now();
  const now = (): number => performance.now() - t0;
  const until = o.minutes * 60_000;
  let measuring = false;
  let rejoins = 0;
  let cycles = 0;
  let failedCycles = 0;
  const watches: RoomWatch[] = [];
  const faults: FaultRecord[] = [];
  try {
    for (let k = 0; k < o.participants; k++) {
      const room = `fault-${k}`;
      const w: RoomWatch = {
        room,
        client: new EventsClient({
          url: `${server.url.replace('http', 'ws')}/events`,
          room,
          WebSocket: Socket,
          backoff: { initialMs: 250, maxMs: 2000 },
          // every event of the room, so every seq it handed out can be accounted for
          summaries: true,
        }),
        seqs: new Set(),
        gaps: [],
        lastEmotionAt: -Infinity,
        emotions: 0,
        lastByStream: new Map(),
        silences: [],
      };
      w.client.on((e: HubEvent) => {
        if (e.type === 'gap') w.gaps.push([e.from, e.to]);
        else {
          if (typeof e.seq === 'number') w.seqs.add(e.seq);
          if (e.type === 'emotion') {
            const t = now();
            if (t - w.lastEmotionAt > SILENCE_MS && w.emotions)
              w.silences.push([Math.round(w.lastEmotionAt / 1000), Math.round(t - w.lastEmotionAt)]);
            w.lastEmotionAt = t;
            w.lastByStream.set(e.stream, t);
            w.emotions++;
          }
        }
      });
      watches.push(w);
    }

    /** One participant: in its room for 1-3 minutes at a time, rejoining when its room closes under it. */
    const participant = async (k: number): Promise<void> => {
      let n = 0;
      while (now() < until) {
        const peer = await TestPeer.open(server.url).catch(() => null);
        if (!peer) {
          failedCycles++;
          await sleep(1000);
          continue;
        }
        let stop: (() => void) | null = null;
        try {
          await peer.request('join', { room: `fault-${k}`, name: `p${k}`, consent: true });
          stop = (await publishClip(peer, 2000 + k * 1000 + (n++ % 1000))).stop;
          const leaveAt = now() + 60_000 + rand() * 120_000;
          let closed = false;
          while ((now() < leaveAt || measuring) && now() < until + (measuring ? RESUME_LIMIT_MS : 0)) {
            if (peer.notifications.some((m) => m.method === 'roomClosed')) {
              closed = true;
              rejoins++;
              break;
            }
            await sleep(200);
          }
          if (!closed) await peer.request('leave');
          cycles++;
        } catch (e) {
          failedCycles++;
          log(`participant ${k}: ${(e as Error).message}`);
          await sleep(1000);
        } finally {
          stop?.();
          peer.close();
        }
      }
    };

    /**
     * Injects one fault and says which rooms it hit and when each counts as recovered:
     * events from frames decoded before the fault can still arrive just after it, so
     * recovery is an event from what replaced the broken part.
     */
    const inject = async (
      kind: FaultKind,
      live: RoomWatch[],
    ): Promise<{ target: string; hit: RoomWatch[]; recovered: (w: RoomWatch) => number | null }> => {
      const at = now();
      if (kind === 'mediasoup-worker') {
        const pids = (await health()).sfu['workerPids'] as number[];
        const pid = pids[Math.floor(rand() * pids.length)]!;
        const before = new Map(live.map((w) => [w, new Set(w.lastByStream.keys())]));
        process.kill(pid, 'SIGKILL');
        // its rooms closed: recovered once the rejoined participant's new stream has an event
        const recovered = (w: RoomWatch): number | null => {
          const fresh = [...w.lastByStream].filter(([stream]) => !before.get(w)!.has(stream));
          return fresh.length ? Math.min(...fresh.map(([, t]) => t)) : null;
        };
        return { target: `mediasoup worker ${pid}`, hit: live, recovered };
      }
      if (kind === 'decoder') {
        const decoders = processTree([server.pid]).filter((p) => /\bffmpeg\b|gst-launch/.test(cmdline(p)));
        if (!decoders.length) return { target: 'no decoder running', hit: [], recovered: () => null };
        const restarts = async (): Promise<Map<string, { room: string; restarts: number }>> =>
          new Map(
            ((await health()).analyser['streams'] as Array<{ stream: string; room: string; restarts: number }>).map((x) => [x.stream, x]),
          );
        const before = await restarts();
        const pid = decoders[Math.floor(rand() * decoders.length)]!;
        process.kill(pid, 'SIGKILL');
        // the stream whose decoder it was restarts it; recovered with an event after that
        for (let i = 0; i < 100; i++) {
          await sleep(100);
          for (const [stream, x] of await restarts()) {
            if (x.restarts <= (before.get(stream)?.restarts ?? x.restarts)) continue;
            const restartedAt = now();
            const w = watches.find((r) => r.room === x.room);
            const recovered = (r: RoomWatch): number | null => {
              const t = r.lastByStream.get(stream);
              return t !== undefined && t > restartedAt ? t : null;
            };
            return { target: `decoder ${pid} of ${x.room}`, hit: w ? [w] : [], recovered };
          }
        }
        return { target: `decoder ${pid} (no restart seen)`, hit: live, recovered: () => null };
      }
      await nats.kill();
      await sleep(1000 + rand() * 2000);
      await nats.restart();
      // nothing reaches a subscriber while NATS is down: the first event after it is back
      const back = now();
      return {
        target: `nats-server, down ${Math.round(back - at)} ms`,
        hit: live,
        recovered: (w) => (w.lastEmotionAt > back ? w.lastEmotionAt : null),
      };
    };

    const injector = async (): Promise<void> => {
      // every kind in turn, in an order drawn again for each round
      let round: FaultKind[] = [];
      await sleep(30_000); // every participant in and analysed first
      while (now() < until - 30_000) {
        if (!round.length) round = (['mediasoup-worker', 'decoder', 'bus'] as FaultKind[]).sort(() => rand() - 0.5);
        const kind = round.shift()!;
        measuring = true;
        const at = now();
        const live = watches.filter((w) => at - w.lastEmotionAt < 3000);
        const { target, hit, recovered } = await inject(kind, live);
        while (now() - at < RESUME_LIMIT_MS && hit.some((w) => recovered(w) === null)) await sleep(50);
        const times = hit.map(recovered);
        const rec: FaultRecord = {
          kind,
          atS: Math.round(at / 1000),
          target,
          liveRooms: hit.length,
          resumedWithinMs: times.every((t) => t !== null) ? Math.round(Math.max(0, ...times.map((t) => t! - at))) : null,
        };
        faults.push(rec);
        log(`fault ${JSON.stringify(rec)}`);
        measuring = false;
        await sleep((o.gapSeconds[0] + rand() * (o.gapSeconds[1] - o.gapSeconds[0])) * 1000);
      }
    };

    await Promise.all([...Array.from({ length: o.participants }, (_, k) => participant(k)), injector()]);
    // everyone has left: the server closes what they held, and the last events reach the clients
    let h = await health();
    for (let i = 0; i < 40 && ((h.sfu['rooms'] as number) > 0 || (h.analyser['streams'] as unknown[]).length > 0); i++) {
      await sleep(500);
      h = await health();
    }
    await sleep(3000);
    h = await health();
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const media = h.sfu['media'] as { transports: number; producers: number };
    const end = {
      rooms: h.sfu['rooms'] as number,
      peers: h.sfu['peers'] as number,
      transports: media.transports,
      producers: media.producers,
      streams: (h.analyser['streams'] as unknown[]).length,
      decoders: processTree([server.pid]).filter((p) => /\bffmpeg\b|gst-launch/.test(cmdline(p))).length,
    };
    const leaks = Object.entries(end)
      .filter(([, v]) => v !== 0)
      .map(([k, v]) => `${k}: ${v}`);
    let lost = 0;
    let inGaps = 0;
    for (const w of watches) {
      const last = Math.max(0, ...w.seqs, ...w.gaps.map((g) => g[1]));
      for (let s = 1; s <= last; s++) {
        if (w.seqs.has(s)) continue;
        if (w.gaps.some(([a, b]) => s >= a && s <= b)) inGaps++;
        else lost++;
      }
    }
    const byKind = Object.fromEntries(
      (['mediasoup-worker', 'decoder', 'bus'] as FaultKind[]).map((k) => {
        const of = faults.filter((f) => f.kind === k);
        const times = of.map((f) => f.resumedWithinMs).filter((t): t is number => t !== null);
        return [k, { injected: of.length, resumed: times.length, resumedWithinMsMax: times.length ? Math.max(...times) : null }];
      }),
    ) as FaultReport['byKind'];
    return {
      minutes: o.minutes,
      participants: o.participants,
      seed: o.seed,
      faults,
      byKind,
      rejoins,
      cycles,
      failedCycles,
      emotionEvents: watches.reduce((a, w) => a + w.emotions, 0),
      eventsLost: lost,
      eventsInGaps: inGaps,
      logFailed: metric(metrics, 'arpgnet_events_log_failed_total'),
      logRetried: metric(metrics, 'arpgnet_events_log_retried_total'),
      clientReconnects: watches.reduce((a, w) => a + w.client.reconnects, 0),
      silences: Object.fromEntries(watches.map((w) => [w.room, w.silences])),
      end,
      leaks,
    };
  } finally {
    for (const w of watches) w.client.close();
    await server.stop();
    await nats.stop();
  }
}
