/**
 * arpgnet-edge/client: emotion events from a server's /events endpoint, for browsers
 * and Node. It authenticates with a room token (asked again from `token()` on every
 * reconnect, so it can be refreshed), reconnects with exponential backoff and jitter,
 * resumes from the last `seq` it saw (so it gets what it missed, exactly once, or a
 * `gap` event naming what it cannot have), and hands out typed events through a
 * callback or an RxJS Observable.
 *
 *   const client = new EventsClient({ url: 'wss://host/events', room: 'demo', token: () => fetchToken() });
 *   client.on((e) => { if (e.type === 'emotion') console.log(e.track, e.label, e.confidence); });
 *   client.events$.pipe(filter((e) => e.type === 'gap')).subscribe((g) => console.warn('missed', g));
 */
import { Observable, Subject } from 'rxjs';
import { CLOSE, FATAL_CLOSE } from '../publish/close-codes.js';
import type { GapEvent, HubEvent, SchemaVersion } from '../publish/events.js';

export { CLOSE };

export type { HubEvent, GapEvent };
export type {
  EmotionEvent,
  PipelineEvent,
  SummaryEvent,
  FaceSummaryEvent,
  RoomSummaryEvent,
  Summary,
  Attention,
  Baseline,
  SchemaVersion,
} from '../publish/events.js';

/** The part of the WebSocket API the client uses: the browser's, or the `ws` package's in Node. */
export interface SocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type SocketFactory = new (url: string) => SocketLike;

export interface ClientOptions {
  /**
   * ws:// or wss:// URL of the /events endpoint, or several (gateways of one cluster):
   * after a lost connection the next one is tried, resuming from the last seq seen.
   */
  url: string | readonly string[];
  /** Only this room's events; needed to resume. */
  room?: string | undefined;
  /** Only this stream's events. */
  stream?: string | undefined;
  /** A room token with the `subscribe` grant, or a function that returns a fresh one. */
  token?: string | (() => string | Promise<string>) | undefined;
  /** Defaults to the global WebSocket (browsers); in Node 20 pass `WebSocket` from `ws`. */
  WebSocket?: SocketFactory | undefined;
  /** Event schema to read: 3 (default), 2 or 1. */
  schema?: SchemaVersion | undefined;
  /** Summary events as well (per face every few seconds and at its end, per room when it closes). */
  summaries?: boolean | undefined;
  /** Ask for facial actions in emotion events (the server computes them only while someone asks). */
  actions?: boolean | undefined;
  /** Reconnect delays: exponential from `initialMs` to `maxMs`, each with up to 50 % jitter. */
  backoff?: { initialMs: number; maxMs: number } | undefined;
}

export type ClientState = 'connecting' | 'open' | 'waiting' | 'closed';

/** Close codes after which reconnecting cannot help (the token is wrong, not late). */

export class EventsClient {
  private socket: SocketLike | null = null;
  private readonly subject = new Subject<HubEvent>();
  private readonly listeners = new Set<(e: HubEvent) => void>();
  private attempt = 0;
  private at = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  /** The newest seq received (of the room, when one is set); resuming starts after it. */
  lastSeq: number | null = null;
  state: ClientState = 'connecting';
  /** Why the last connection closed, as the server said. */
  lastClose: { code: number; reason: string } | null = null;
  reconnects = 0;
  readonly events$: Observable<HubEvent>;

  constructor(private readonly o: ClientOptions) {
    this.events$ = this.subject.asObservable();
    void this.connect();
  }

  /** Calls `fn` for every event; returns the function that stops it. */
  on(fn: (e: HubEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  close(): void {
    this.stopped = true;
    this.state = 'closed';
    if (this.timer) clearTimeout(this.timer);
    this.socket?.close(CLOSE.normal, 'client closed');
    this.subject.complete();
  }

  private url(): string {
    const urls = typeof this.o.url === 'string' ? [this.o.url] : this.o.url;
    const u = new URL(urls[this.at % urls.length]!);
    if (this.o.room) u.searchParams.set('room', this.o.room);
    if (this.o.stream) u.searchParams.set('stream', this.o.stream);
    if (this.o.room && this.lastSeq !== null) u.searchParams.set('resume', String(this.lastSeq));
    if (this.o.schema !== undefined && this.o.schema !== 3) u.searchParams.set('v', String(this.o.schema));
    if (this.o.summaries) u.searchParams.set('summaries', '1');
    if (this.o.actions) u.searchParams.set('actions', '1');
    return u.toString();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    this.state = 'connecting';
    let token: string | undefined;
    try {
      token = typeof this.o.token === 'function' ? await this.o.token() : this.o.token;
    } catch {
      return this.retry();
    }
    if (this.stopped) return;
    const Ctor = this.o.WebSocket ?? (globalThis as { WebSocket?: SocketFactory }).WebSocket;
    if (!Ctor) throw new Error('no WebSocket implementation: pass one as options.WebSocket (in Node: `ws`)');
    const ws = new Ctor(this.url());
    this.socket = ws;
    ws.onopen = () => {
      this.state = 'open';
      this.attempt = 0;
      // the token goes in the first message, never in the URL
      if (token) ws.send(JSON.stringify({ type: 'auth', token }));
    };
    ws.onmessage = (m) => {
      let e: HubEvent;
      try {
        e = JSON.parse(typeof m.data === 'string' ? m.data : String(m.data)) as HubEvent;
      } catch {
        return;
      }
      if (e.type === 'gap') {
        if (this.o.room && e.room === this.o.room) this.lastSeq = Math.max(this.lastSeq ?? 0, e.to);
      } else if (typeof e.seq === 'number' && (!this.o.room || e.room === this.o.room)) {
        if (this.o.room && this.lastSeq !== null && e.seq <= this.lastSeq) return; // already delivered
        this.lastSeq = e.seq;
      }
      for (const fn of this.listeners) fn(e);
      this.subject.next(e);
    };
    ws.onerror = () => undefined; // onclose follows and decides
    ws.onclose = (ev) => {
      this.lastClose = { code: ev.code, reason: ev.reason };
      if (this.socket === ws) this.socket = null;
      if (this.stopped) return;
      if (FATAL_CLOSE.has(ev.code)) {
        this.state = 'closed';
        this.subject.error(new Error(`events refused (${ev.code}): ${ev.reason}`));
        return;
      }
      this.retry();
    };
  }

  private retry(): void {
    if (this.stopped) return;
    this.state = 'waiting';
    this.at++; // the next gateway, when there are several
    const b = this.o.backoff ?? { initialMs: 250, maxMs: 10_000 };
    const base = Math.min(b.maxMs, b.initialMs * 2 ** this.attempt++);
    this.timer = setTimeout(
      () => {
        this.reconnects++;
        void this.connect();
      },
      base * (0.5 + Math.random() * 0.5),
    );
  }
}
