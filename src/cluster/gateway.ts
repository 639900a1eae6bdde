import type { IncomingMessage, Server } from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';
import type { Bus, RoomReader } from '../bus/bus.js';
import type { Logger } from '../log.js';
import { toV1, type GapEvent, type HubEvent } from '../publish/events.js';
import { AuthError, type Authenticator } from '../serve/auth.js';
import type { Limits } from '../serve/limits.js';
import { requestUrl } from '../serve/request-url.js';

export interface GatewayOptions {
  auth: Authenticator;
  origins: readonly string[];
  limits: Limits;
  /** Bytes a socket may hold unsent before we stop reading the log for it. */
  highWaterBytes: number;
}

const AUTH_TIMEOUT_MS = 5000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * /events served from the bus's event log (JetStream), the same protocol as one process (`?room=`, `resume`,
 * `stream`, `v`, the token in the first message, the same close codes): each subscriber
 * reads the room's stream through its own ordered consumer, from `resume + 1` or from
 * now. `seq` is the stream's own sequence, so it means the same on every gateway: a
 * client that loses its gateway resumes on another with nothing missed while the log
 * still holds it, and a `gap` event for what it no longer holds. A slow client only
 * reads the log more slowly; it never makes the log drop anything.
 */
export class EventGateway {
  private readonly wss: WebSocketServer;
  private readonly readers = new Set<RoomReader>();
  subscribers = 0;
  sent = 0;

  constructor(
    server: Server,
    private readonly bus: Bus,
    private readonly log: Logger,
    private readonly o: GatewayOptions,
  ) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 });
    server.on('upgrade', (req: IncomingMessage, socket, head) => {
      const url = requestUrl(req);
      if (url?.pathname !== '/events') return;
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        if (!o.limits.admit(ws)) return;
        ws.on('error', () => undefined);
        void this.add(ws, url, req).catch((e: unknown) => {
          log.warn({ err: (e as Error).message }, 'events subscriber failed');
          ws.close(1011, (e as Error).message.slice(0, 100));
        });
      });
    });
  }

  private async add(ws: WebSocket, url: URL, req: IncomingMessage): Promise<void> {
    const { auth } = this.o;
    if (auth.required && !auth.originAllowed(req.headers.origin, req.headers.host, this.o.origins)) {
      auth.refusals.badOrigin++;
      return ws.close(4405, `origin ${req.headers.origin ?? ''} is not allowed`);
    }
    const q = url.searchParams;
    const v = q.get('v') ?? '2';
    if (v !== '1' && v !== '2') return ws.close(4400, `schema v${v} is not served (1 or 2)`);
    const resume = q.get('resume') === null ? null : Number(q.get('resume'));
    if (resume !== null && (!Number.isInteger(resume) || resume < 0)) return ws.close(4400, 'resume takes a whole number');
    let room = q.get('room');
    if (auth.required) {
      const token = await firstToken(ws);
      try {
        const claims = await auth.check(token, room, 'subscribe');
        room ??= claims?.room ?? null;
      } catch (e) {
        const err = e instanceof AuthError ? e : new AuthError('unauthenticated', 'the room token is not valid');
        return ws.close(err.code, err.message);
      }
    }
    if (!room || !/^[\w.-]{1,64}$/.test(room)) return ws.close(4400, 'a gateway serves one room per subscriber: add ?room=');
    if (ws.readyState !== WebSocket.OPEN) return;
    await this.serve(ws, room, q.get('stream'), resume, v === '1' ? 1 : 2);
  }

  private async serve(ws: WebSocket, room: string, stream: string | null, resume: number | null, v: 1 | 2): Promise<void> {
    const log = await this.bus.roomLog(room);
    let start: number | null = null;
    if (resume !== null) {
      start = resume + 1;
      if (start < log.first && resume < log.last) {
        const gap: GapEvent = {
          v,
          type: 'gap',
          room,
          from: start,
          to: log.first - 1,
          reason: 'expired',
          wallTime: new Date().toISOString(),
        };
        ws.send(JSON.stringify(gap));
        start = log.first;
      }
    }
    const messages = await this.bus.readRoom(room, { from: start, stream });
    this.readers.add(messages);
    this.subscribers++;
    ws.once('close', () => void messages.close());
    try {
      for await (const m of messages) {
        if (ws.readyState !== WebSocket.OPEN) break;
        // the log holds each event as JSON without its seq: v2 readers get it spliced in, not re-encoded
        if (v === 2) ws.send(`{"seq":${m.seq},${m.data.slice(1)}`);
        else ws.send(JSON.stringify({ ...toV1(JSON.parse(m.data) as HubEvent), seq: m.seq }));
        this.sent++;
        // backpressure: stop reading the log until the socket drains; the log keeps the rest
        while (ws.readyState === WebSocket.OPEN && ws.bufferedAmount > this.o.highWaterBytes) await sleep(20);
      }
    } finally {
      this.readers.delete(messages);
      this.subscribers--;
    }
  }

  async close(): Promise<void> {
    for (const r of this.readers) await r.close();
    for (const ws of this.wss.clients) ws.close(1001, 'server shutting down');
    const cut = setTimeout(() => this.wss.clients.forEach((ws) => ws.terminate()), 1000);
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    clearTimeout(cut);
  }
}

/** The token from the first message ({"type":"auth","token":...}); undefined when none comes in time. */
function firstToken(ws: WebSocket): Promise<unknown> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), AUTH_TIMEOUT_MS);
    ws.once('message', (raw: Buffer) => {
      clearTimeout(timer);
      try {
        resolve((JSON.parse(raw.toString('utf8')) as { token?: unknown }).token);
      } catch {
        resolve(undefined);
      }
    });
    ws.once('close', () => resolve(undefined));
  });
}
