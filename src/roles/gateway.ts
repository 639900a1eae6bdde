import type { IncomingMessage } from 'node:http';
import { WebSocket } from 'ws';
import type { Bus, Logged, LogReader } from '../bus/bus.js';
import { ACTIONS_DEMAND } from '../bus/subjects.js';
import { AuthError, type Authenticator } from '../host/auth.js';
import type { Endpoint } from '../host/host.js';
import type { Logger } from '../log.js';
import { CLOSE } from '../publish/close-codes.js';
import { gapEvent } from '../publish/envelopes.js';
import { inSchema, type GapEvent, type HubEvent, type SchemaVersion } from '../publish/events.js';

export interface GatewayOptions {
  auth: Authenticator;
  /** Events held per subscriber while its socket is backed up; the oldest go first. */
  maxQueue: number;
  /** Bytes a socket may hold unsent before we stop handing it more. */
  highWaterBytes: number;
  /** Names this gateway when it tells the analysers whether its subscribers want facial actions. */
  id: string;
}

interface Subscriber {
  ws: WebSocket;
  room: string | null;
  stream: string | null;
  v: SchemaVersion;
  actions: boolean;
  /** Summary events too (?summaries=1): off for raw subscribers, who aggregate for themselves. */
  summaries: boolean;
  queue: Queued[];
  dropped: number;
  /** Ranges of this subscriber's events dropped from its queue, per room, sent as a gap before the next event. */
  gaps: Map<string, { from: number; to: number; reason: GapEvent['reason'] }>;
  /** The last seq read per room, to see what the log let go before this reader came to it. */
  read: Map<string, number>;
  reader: LogReader | null;
}

/** An event to send, or (`expiredFrom` set) the seqs before it that the log no longer held when read. */
type Queued = Logged & { expiredFrom?: number };

const AUTH_TIMEOUT_MS = 5000;
const ROOM = /^[\w.-]{1,64}$/;
/** How often a gateway repeats its demand for facial actions (analysers forget it after three silences). */
export const DEMAND_MS = 1000;

/**
 * The /events endpoint, the same in one box and on every gateway: each subscriber reads
 * the bus's event log (`?room=R`, or every room), `?stream=S` narrows it, `?v=1` gets
 * schema v1, `?actions=1` asks for facial actions (computed only while someone asks),
 * `?room=R&resume=<last seq>` gets what it missed from the log, or a `gap` naming what
 * the log no longer holds; `?v=2` gets schema v2, `?summaries=1` summary events too. A late subscriber first gets the `stream_start` of each
 * running stream. A room token, when required, comes in the first message. A slow
 * subscriber never slows the pipeline or the others: its bounded queue drops its
 * oldest events, counts them and tells it with a `gap`.
 */
export class EventGateway implements Endpoint {
  readonly path = '/events';
  readonly maxPayload = 16 * 1024;
  private readonly subs = new Set<Subscriber>();
  private readonly timer: NodeJS.Timeout;
  private readonly demandTimer: NodeJS.Timeout;
  private wanted = false;
  sent = 0;
  /** Events a subscriber did not get, by reason. */
  readonly dropped = { slow_client: 0, expired_from_ring: 0 };

  constructor(
    private readonly bus: Bus,
    private readonly log: Logger,
    private readonly o: GatewayOptions,
  ) {
    this.timer = setInterval(() => this.subs.forEach((s) => this.drain(s)), 50);
    this.timer.unref();
    this.demandTimer = setInterval(() => this.sayDemand(), DEMAND_MS);
    this.demandTimer.unref();
  }

  get size(): number {
    return this.subs.size;
  }

  get droppedTotal(): number {
    return this.dropped.slow_client;
  }

  accept(ws: WebSocket, _req: IncomingMessage, url: URL): void {
    const q = url.searchParams;
    const v = q.get('v') ?? '3';
    if (v !== '1' && v !== '2' && v !== '3') return ws.close(CLOSE.badRequest, `schema v${v} is not served (1, 2 or 3)`);
    const room = q.get('room');
    const resume = q.get('resume') === null ? null : Number(q.get('resume'));
    if (resume !== null && (!Number.isInteger(resume) || resume < 0 || room === null))
      return ws.close(CLOSE.badRequest, 'resume takes a whole number and needs ?room=');
    if (room !== null && !ROOM.test(room)) return ws.close(CLOSE.badRequest, 'a room id is 1-64 letters, digits, _ . -');
    const s: Subscriber = {
      ws,
      room,
      stream: q.get('stream'),
      v: Number(v) as SchemaVersion,
      actions: q.get('actions') === '1',
      summaries: q.get('summaries') === '1',
      queue: [],
      dropped: 0,
      gaps: new Map(),
      read: new Map(),
      reader: null,
    };
    this.admit(s)
      .then((ok) => (ok ? this.serve(s, resume) : undefined))
      .catch((e: unknown) => {
        this.log.warn({ err: e, room: s.room }, 'events subscriber failed');
        ws.close(CLOSE.internal, (e as Error).message.slice(0, 100));
      });
  }

  /** With tokens on, the first message carries one (never the URL: URLs end up in logs); it may narrow the room. */
  private async admit(s: Subscriber): Promise<boolean> {
    const { auth } = this.o;
    if (!auth.required) return true;
    const token = await firstToken(s.ws);
    if (token === NONE) {
      s.ws.close(CLOSE.unauthenticated, 'send {"type":"auth","token":...} first');
      return false;
    }
    try {
      const claims = await auth.check(token, s.room, 'subscribe');
      s.room ??= claims?.room ?? null;
      return true;
    } catch (e) {
      const err = e instanceof AuthError ? e : new AuthError('unauthenticated', 'the room token is not valid');
      this.log.info({ reason: err.reason, room: s.room }, 'events subscriber refused');
      s.ws.close(err.code, err.message);
      return false;
    }
  }

  private async serve(s: Subscriber, resume: number | null): Promise<void> {
    if (s.ws.readyState !== WebSocket.OPEN) return;
    let from: number | null = null;
    if (resume !== null && s.room !== null) {
      const log = await this.bus.roomLog(s.room);
      from = resume + 1;
      if (from < log.first && resume < log.last) {
        this.sendGap(s, gapEvent(s.room, from, log.first - 1, 'expired'));
        this.dropped.expired_from_ring += log.first - from;
        from = log.first;
      }
    }
    // the reader opens first, so nothing published while the starts are read is missed
    const reader = await this.bus.readRoom(s.room, { from, stream: s.stream });
    s.reader = reader;
    if (s.ws.readyState !== WebSocket.OPEN) return void reader.close();
    this.subs.add(s);
    s.ws.once('close', () => this.leave(s));
    if (s.actions) this.demandChanged();
    const replayed = new Set<string>();
    if (from === null)
      for (const st of await this.bus.liveStarts(s.room)) {
        if (s.stream && (JSON.parse(st.data) as { stream: string }).stream !== s.stream) continue;
        replayed.add(`${st.room}\n${st.seq}`);
        this.push(s, st);
      }
    for await (const m of reader) {
      if (s.ws.readyState !== WebSocket.OPEN) break;
      if (replayed.size && replayed.delete(`${m.room}\n${m.seq}`)) continue;
      this.expiredBefore(s, m, from);
      this.push(s, m);
    }
  }

  private leave(s: Subscriber): void {
    if (!this.subs.delete(s)) return;
    void s.reader?.close();
    if (s.actions) this.demandChanged();
    if (s.dropped) this.log.warn({ dropped: s.dropped, room: s.room }, 'events subscriber closed after dropping events');
  }

  /**
   * A room's log is contiguous, so a jump in seq between two reads (on one room, unfiltered)
   * means the log let events go (age, bytes) before this reader got to them: queued as a
   * gap in its place, so the subscriber is told of every seq it does not get.
   */
  private expiredBefore(s: Subscriber, m: Logged, from: number | null): void {
    if (s.stream !== null) return;
    const last = s.read.get(m.room) ?? (from !== null && s.room === m.room ? from - 1 : null);
    s.read.set(m.room, m.seq);
    if (last === null || m.seq <= last + 1) return;
    this.dropped.expired_from_ring += m.seq - last - 1;
    s.queue.push({ room: m.room, seq: m.seq - 1, data: '', expiredFrom: last + 1 });
  }

  private push(s: Subscriber, m: Logged): void {
    s.queue.push(m);
    while (s.queue.length > this.o.maxQueue) {
      const lost = s.queue.shift()!;
      const from = lost.expiredFrom ?? lost.seq;
      if (lost.expiredFrom === undefined) {
        s.dropped++;
        this.dropped.slow_client++;
      }
      const g = s.gaps.get(lost.room);
      const reason = g?.reason === 'dropped' || lost.expiredFrom === undefined ? 'dropped' : 'expired';
      s.gaps.set(lost.room, { from: g?.from ?? from, to: lost.seq, reason });
    }
    this.drain(s);
  }

  private sendGap(s: Subscriber, gap: GapEvent): void {
    s.ws.send(JSON.stringify({ ...gap, v: s.v }));
  }

  private drain(s: Subscriber): void {
    while (s.queue.length && s.ws.readyState === WebSocket.OPEN && s.ws.bufferedAmount < this.o.highWaterBytes) {
      const m = s.queue.shift()!;
      const g = s.gaps.get(m.room);
      if (g) {
        s.gaps.delete(m.room);
        this.sendGap(s, gapEvent(m.room, g.from, g.to, g.reason));
      }
      if (m.expiredFrom !== undefined) {
        this.sendGap(s, gapEvent(m.room, m.expiredFrom, m.seq, 'expired'));
        continue;
      }
      // the log holds each event as JSON without its seq: v3 readers get it spliced in, not re-encoded
      const summary = m.data.includes('"type":"summary"') && (JSON.parse(m.data) as HubEvent).type === 'summary';
      if (summary && !s.summaries) continue;
      if (s.v === 3) s.ws.send(`{"seq":${m.seq},${m.data.slice(1)}`);
      else {
        const old = inSchema(JSON.parse(m.data) as HubEvent, s.v);
        if (!old) continue;
        s.ws.send(JSON.stringify({ ...old, seq: m.seq }));
      }
      this.sent++;
    }
  }

  /** Subscribers that asked for facial actions. */
  get actionsWanted(): number {
    let n = 0;
    for (const s of this.subs) if (s.actions) n++;
    return n;
  }

  private demandChanged(): void {
    const now = this.actionsWanted > 0;
    if (now === this.wanted) return;
    this.wanted = now;
    this.log.info({ on: now }, 'facial actions for subscribers');
    this.sayDemand();
  }

  private sayDemand(): void {
    if (this.bus.up) this.bus.publish(ACTIONS_DEMAND, JSON.stringify({ gateway: this.o.id, wanted: this.wanted }));
  }

  health(): Record<string, unknown> {
    return { subscribers: this.size, sent: this.sent, dropped: this.dropped, actionsWanted: this.actionsWanted };
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.demandTimer);
    for (const s of [...this.subs]) {
      this.leave(s);
      s.ws.close(CLOSE.goingAway, 'server shutting down');
    }
    await Promise.resolve();
  }
}

const NONE = Symbol('no token');

/** The token from the first message ({"type":"auth","token":...}); NONE when nothing comes in time. */
function firstToken(ws: WebSocket): Promise<unknown> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(NONE), AUTH_TIMEOUT_MS);
    ws.once('message', (raw: Buffer) => {
      clearTimeout(timer);
      try {
        resolve((JSON.parse(raw.toString('utf8')) as { token?: unknown }).token);
      } catch {
        resolve(undefined);
      }
    });
    ws.once('close', () => {
      clearTimeout(timer);
      resolve(NONE);
    });
  });
}
