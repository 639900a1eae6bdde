import type { IncomingMessage, Server } from 'node:http';
import { WebSocketServer, WebSocket } from 'ws';
import type { Logger } from '../log.js';
import type { Limits } from '../serve/limits.js';
import { AuthError, type Authenticator } from '../serve/auth.js';
import { toV1, type GapEvent, type HubEvent, type PipelineEvent } from './events.js';
import { requestUrl } from '../serve/request-url.js';

export interface HubOptions {
  /** Events held per client while its socket is backed up; the oldest go first. */
  maxQueue: number;
  /** Bytes the socket may hold unsent before we stop handing it more. */
  highWaterBytes: number;
  /** Events kept per room for clients that resume (`?resume=<last seq>`), and for how long. */
  ringSize: number;
  ringMaxAgeMs: number;
  /** Room tokens: when required, a client's first message must be {"type":"auth","token":...}. */
  auth?: Authenticator | undefined;
  origins?: readonly string[] | undefined;
  /** Connections at once, shared with /signaling. */
  limits?: Limits | undefined;
}

interface Entry {
  seq: number;
  room: string;
  stream: string;
  event: HubEvent;
  json: string;
  /** The same in schema v1, made the first time a v1 client needs it. */
  json1?: string;
  at: number;
}

interface Client {
  ws: WebSocket;
  stream: string | null;
  room: string | null;
  queue: Entry[];
  dropped: number;
  /** Ranges of this client's events dropped from its queue, per room, sent as a gap before the next event. */
  gaps: Map<string, { from: number; to: number }>;
  /** Schema version it reads (`?v=1` for the old shape). */
  v: 1 | 2;
  /** It asked for facial actions (`?actions=1`). */
  actions: boolean;
}

const AUTH_TIMEOUT_MS = 5000;

/**
 * The /events WebSocket endpoint. Every event gets a `seq`, contiguous per room; the
 * hub keeps a bounded ring of each room's recent events, so a client that reconnects
 * with `?room=R&resume=<last seq it saw>` gets what it missed, or a `gap` event naming
 * what it can no longer have. `?v=1` gets schema v1, `?actions=1` asks for facial
 * actions (computed only while someone asks). A slow client never slows the pipeline or the others:
 * its bounded queue drops the oldest events, counts them and tells the client (a gap).
 */
export class EventHub {
  private readonly wss: WebSocketServer;
  private readonly clients = new Set<Client>();
  /** The stream_start of every live stream, replayed to late subscribers so they know each frame size. */
  private readonly live = new Map<string, { entry: Entry; room: string | null }>();
  private readonly rings = new Map<string, Entry[]>();
  private readonly nextSeq = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  droppedTotal = 0;
  published = 0;
  /** Told when the first subscriber asks for facial actions and when the last one leaves. */
  onActionsDemand: ((wanted: boolean) => void) | null = null;
  /** Events dropped per reason, for /metrics (published ones are counted there as they pass). */
  readonly counts = { dropped: { slow_client: 0, expired_from_ring: 0 } };

  constructor(
    server: Server,
    private readonly log: Logger,
    private readonly o: HubOptions = { maxQueue: 256, highWaterBytes: 1 << 20, ringSize: 2048, ringMaxAgeMs: 300_000 },
    path = '/events',
  ) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 });
    server.on('upgrade', (req: IncomingMessage, socket, head) => {
      const url = requestUrl(req);
      if (url?.pathname !== path) return; // another endpoint's upgrade (or an unreadable one, destroyed by the server)
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        if (this.o.limits && !this.o.limits.admit(ws)) return;
        this.add(ws, url, req);
      });
    });
    this.timer = setInterval(() => this.clients.forEach((c) => this.drain(c)), 50);
    this.timer.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  private add(ws: WebSocket, url: URL, req: IncomingMessage): void {
    const auth = this.o.auth;
    if (auth?.required && !auth.originAllowed(req.headers.origin, req.headers.host, this.o.origins ?? [])) {
      auth.refusals.badOrigin++;
      ws.close(4405, `origin ${req.headers.origin ?? ''} is not allowed`);
      return;
    }
    const resume = url.searchParams.get('resume');
    const c: Client = {
      ws,
      stream: url.searchParams.get('stream'),
      room: url.searchParams.get('room'),
      queue: [],
      dropped: 0,
      gaps: new Map(),
      v: url.searchParams.get('v') === '1' ? 1 : 2,
      actions: url.searchParams.get('actions') === '1',
    };
    const v = url.searchParams.get('v');
    if (v !== null && v !== '1' && v !== '2') {
      ws.close(4400, `schema v${v} is not served (1 or 2)`);
      return;
    }
    const resumeSeq = resume === null ? null : Number(resume);
    if (resumeSeq !== null && (!Number.isInteger(resumeSeq) || resumeSeq < 0 || c.room === null)) {
      ws.close(4400, 'resume takes a whole number and needs ?room=');
      return;
    }
    ws.on('error', () => this.clients.delete(c));
    if (!auth?.required) {
      this.start(c, resumeSeq);
      return;
    }
    // the token comes in the first message, never in the URL (URLs end up in logs)
    const timer = setTimeout(() => ws.close(4401, 'send {"type":"auth","token":...} first'), AUTH_TIMEOUT_MS);
    ws.once('message', (raw: Buffer) => {
      clearTimeout(timer);
      let token: unknown;
      try {
        token = (JSON.parse(raw.toString('utf8')) as { token?: unknown }).token;
      } catch {
        token = undefined;
      }
      auth
        .check(token, c.room, 'subscribe')
        .then((claims) => {
          c.room ??= claims?.room ?? null; // a room token narrows an unfiltered subscriber to its room
          this.start(c, resumeSeq);
        })
        .catch((e: unknown) => {
          const err = e instanceof AuthError ? e : new AuthError('unauthenticated', 'the room token is not valid');
          this.log.info({ reason: err.reason, room: c.room }, 'events subscriber refused');
          ws.close(err.code, err.message);
        });
    });
  }

  /** Subscribers that asked for facial actions. */
  get actionsWanted(): number {
    let n = 0;
    for (const c of this.clients) if (c.actions) n++;
    return n;
  }

  private start(c: Client, resume: number | null): void {
    if (c.ws.readyState !== WebSocket.OPEN) return;
    this.clients.add(c);
    if (c.actions && this.actionsWanted === 1) this.onActionsDemand?.(true);
    if (resume !== null && c.room !== null) this.replay(c, c.room, resume);
    else for (const [stream, s] of this.live) if (this.wants(c, stream, s.room)) c.queue.push(s.entry);
    this.drain(c);
    c.ws.on('close', () => {
      this.clients.delete(c);
      if (c.actions && this.actionsWanted === 0) this.onActionsDemand?.(false);
      if (c.dropped) this.log.warn({ dropped: c.dropped }, 'events client closed after dropping events');
    });
    // subscribers only listen; anything they send later is ignored
  }

  /** The room's events after `after`, preceded by a gap when the ring no longer holds all of them. */
  private replay(c: Client, room: string, after: number): void {
    const ring = this.trim(room);
    const last = (this.nextSeq.get(room) ?? 1) - 1;
    const first = ring[0]?.seq ?? last + 1;
    if (after + 1 < first && after < last) {
      this.sendGap(c, { v: 1, type: 'gap', room, from: after + 1, to: first - 1, reason: 'expired', wallTime: new Date().toISOString() });
      this.counts.dropped.expired_from_ring += first - 1 - after;
    }
    for (const e of ring) if (e.seq > after && this.wants(c, e.stream, room)) c.queue.push(e);
  }

  private trim(room: string): Entry[] {
    const ring = this.rings.get(room) ?? [];
    const old = Date.now() - this.o.ringMaxAgeMs;
    let k = 0;
    while (k < ring.length && (ring.length - k > this.o.ringSize || ring[k]!.at < old)) k++;
    if (k) ring.splice(0, k);
    return ring;
  }

  private wants(c: Client, stream: string, room: string | null | undefined): boolean {
    return (!c.stream || c.stream === stream) && (!c.room || c.room === room);
  }

  publish(e: PipelineEvent): void {
    const room = e.room ?? '';
    const seq = this.nextSeq.get(room) ?? 1;
    this.nextSeq.set(room, seq + 1);
    const stamped = { ...e, seq };
    const entry: Entry = { seq, room, stream: e.stream, event: stamped, json: JSON.stringify(stamped), at: Date.now() };
    this.published++;
    if (!this.rings.has(room)) this.rings.set(room, []);
    this.rings.get(room)!.push(entry);
    this.trim(room);
    if (e.type === 'stream_start') this.live.set(e.stream, { entry, room: e.room ?? null });
    if (e.type === 'stream_end') this.live.delete(e.stream);
    for (const c of this.clients) {
      if (!this.wants(c, e.stream, e.room)) continue;
      c.queue.push(entry);
      if (c.queue.length > this.o.maxQueue) {
        const lost = c.queue.shift()!;
        c.dropped++;
        this.droppedTotal++;
        this.counts.dropped.slow_client++;
        const g = c.gaps.get(lost.room);
        c.gaps.set(lost.room, { from: g?.from ?? lost.seq, to: lost.seq });
      }
      this.drain(c);
    }
  }

  private sendGap(c: Client, gap: GapEvent): void {
    c.ws.send(JSON.stringify({ ...gap, v: c.v }));
  }

  private jsonFor(c: Client, e: Entry): string {
    if (c.v === 2) return e.json;
    return (e.json1 ??= JSON.stringify(toV1(e.event)));
  }

  private drain(c: Client): void {
    while (c.queue.length && c.ws.readyState === WebSocket.OPEN && c.ws.bufferedAmount < this.o.highWaterBytes) {
      const e = c.queue.shift()!;
      const g = c.gaps.get(e.room);
      if (g) {
        c.gaps.delete(e.room);
        this.sendGap(c, { v: 1, type: 'gap', room: e.room, from: g.from, to: g.to, reason: 'dropped', wallTime: new Date().toISOString() });
      }
      c.ws.send(this.jsonFor(c, e));
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const c of this.clients) c.ws.close(1001, 'server shutting down');
    const cut = setTimeout(() => this.wss.clients.forEach((ws) => ws.terminate()), 1000);
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    clearTimeout(cut);
  }
}
