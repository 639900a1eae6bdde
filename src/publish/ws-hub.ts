import type { IncomingMessage, Server } from 'node:http';
import { WebSocketServer, WebSocket } from 'ws';
import type { Logger } from '../log.js';
import type { PipelineEvent } from './events.js';

export interface HubOptions {
  /** Events held per client while its socket is backed up; the oldest go first. */
  maxQueue: number;
  /** Bytes the socket may hold unsent before we stop handing it more. */
  highWaterBytes: number;
}

interface Client {
  ws: WebSocket;
  stream: string | null;
  room: string | null;
  queue: string[];
  dropped: number;
}

/**
 * The /events WebSocket endpoint: every event to every client, or only one stream's
 * (?stream=S) or one room's (?room=R). A slow client never slows the pipeline or the
 * other clients: its bounded queue drops the oldest events and counts them.
 */
export class EventHub {
  private readonly wss: WebSocketServer;
  private readonly clients = new Set<Client>();
  /** The stream_start of every live stream, replayed to late subscribers so they know each frame size. */
  private readonly live = new Map<string, { json: string; room: string | null }>();
  private readonly timer: NodeJS.Timeout;
  droppedTotal = 0;

  constructor(
    server: Server,
    private readonly log: Logger,
    private readonly o: HubOptions = { maxQueue: 256, highWaterBytes: 1 << 20 },
    path = '/events',
  ) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
    server.on('upgrade', (req: IncomingMessage, socket, head) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname !== path) return; // another endpoint's upgrade
      this.wss.handleUpgrade(req, socket, head, (ws) => this.add(ws, url));
    });
    this.timer = setInterval(() => this.clients.forEach((c) => this.drain(c)), 50);
    this.timer.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  private add(ws: WebSocket, url: URL): void {
    const c: Client = { ws, stream: url.searchParams.get('stream'), room: url.searchParams.get('room'), queue: [], dropped: 0 };
    this.clients.add(c);
    for (const [stream, s] of this.live) if (this.wants(c, stream, s.room)) c.queue.push(s.json);
    this.drain(c);
    ws.on('close', () => {
      this.clients.delete(c);
      if (c.dropped) this.log.warn({ dropped: c.dropped }, 'events client closed after dropping events');
    });
    ws.on('error', () => this.clients.delete(c));
    // subscribers only listen; anything they send is ignored
  }

  private wants(c: Client, stream: string, room: string | null | undefined): boolean {
    return (!c.stream || c.stream === stream) && (!c.room || c.room === room);
  }

  publish(e: PipelineEvent): void {
    let json: string | null = null;
    if (e.type === 'stream_start') this.live.set(e.stream, { json: (json = JSON.stringify(e)), room: e.room ?? null });
    if (e.type === 'stream_end') this.live.delete(e.stream);
    for (const c of this.clients) {
      if (!this.wants(c, e.stream, e.room)) continue;
      json ??= JSON.stringify(e);
      c.queue.push(json);
      if (c.queue.length > this.o.maxQueue) {
        c.queue.shift();
        c.dropped++;
        this.droppedTotal++;
      }
      this.drain(c);
    }
  }

  private drain(c: Client): void {
    while (c.queue.length && c.ws.readyState === WebSocket.OPEN && c.ws.bufferedAmount < this.o.highWaterBytes) {
      c.ws.send(c.queue.shift()!);
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
