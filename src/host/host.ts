import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../log.js';
import { CLOSE } from '../publish/close-codes.js';
import type { Authenticator } from './auth.js';
import { securityHeaders } from './headers.js';
import type { Limits } from './limits.js';
import { Metrics } from './metrics.js';
import { requestUrl } from './request-url.js';

/** A WebSocket endpoint: its path and payload limit; the host checks origin and connection limit first. */
export interface Endpoint {
  path: string;
  maxPayload: number;
  accept(ws: WebSocket, req: IncomingMessage, url: URL): void;
  /** Tells its clients the server is going away; the host cuts off whoever does not close. */
  close(): Promise<void>;
}

/** A role's part of /healthz: its section, and whether it can serve now (a role that lost its bus cannot). */
export interface HealthPart {
  section: string;
  read(): unknown;
  serving?: () => boolean;
}

export interface HostOptions {
  host: string;
  port: number;
  auth: Authenticator;
  origins: readonly string[];
  limits: Limits;
  log: Logger;
  /** Said at the top of /healthz (id, pid, roles, bus). */
  identity: () => Record<string, unknown>;
}

type Closer = () => Promise<void> | void;

/**
 * The one HTTP server under every role: security headers, /healthz and /metrics made
 * of what each role contributes, the roles' WebSocket endpoints by path (origin and
 * connection limit checked once, here), other requests handed to the routes, and every
 * closer run in reverse order on close.
 */
export class Host {
  readonly metrics = new Metrics();
  private readonly server: Server;
  private readonly endpoints = new Map<string, { e: Endpoint; wss: WebSocketServer }>();
  private readonly parts: HealthPart[] = [];
  private readonly routes: Array<(req: IncomingMessage, res: ServerResponse) => boolean> = [];
  private readonly closers: Closer[] = [];
  private closing: Promise<void> | null = null;
  url = '';
  port = 0;

  constructor(private readonly o: HostOptions) {
    this.server = createServer((req, res) => this.request(req, res));
    this.server.on('upgrade', (req: IncomingMessage, socket, head) => {
      const url = requestUrl(req);
      const ep = url && this.endpoints.get(url.pathname);
      if (!url || !ep) return void socket.destroy();
      ep.wss.handleUpgrade(req, socket, head, (ws) => {
        if (!o.limits.admit(ws)) return;
        ws.on('error', () => undefined);
        const { auth } = o;
        if (auth.required && !auth.originAllowed(req.headers.origin, req.headers.host, o.origins)) {
          auth.refusals.badOrigin++;
          return ws.close(CLOSE.badOrigin, `origin ${req.headers.origin ?? ''} is not allowed`);
        }
        ep.e.accept(ws, req, url);
      });
    });
  }

  /** Closed in its turn among the closers: after what was registered after it (a role ends its streams before the events endpoint goes). */
  endpoint(e: Endpoint): void {
    const wss = new WebSocketServer({ noServer: true, maxPayload: e.maxPayload });
    this.endpoints.set(e.path, { e, wss });
    this.onClose(async () => {
      await e.close().catch((err: unknown) => this.o.log.warn({ err, path: e.path }, 'endpoint did not close cleanly'));
      const cut = setTimeout(() => wss.clients.forEach((ws) => ws.terminate()), 1000);
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      clearTimeout(cut);
    });
  }

  health(p: HealthPart): void {
    this.parts.push(p);
  }

  route(r: (req: IncomingMessage, res: ServerResponse) => boolean): void {
    this.routes.push(r);
  }

  onClose(c: Closer): void {
    this.closers.push(c);
  }

  /** /healthz: 200 while every role can serve, 503 (with the reason in `degraded`) while one cannot. */
  healthz(): { status: number; body: Record<string, unknown> } {
    const body: Record<string, unknown> = {
      ...this.o.identity(),
      connections: this.o.limits.connections,
      limitRefusals: this.o.limits.refusals,
    };
    let serving = true;
    for (const p of this.parts) {
      body[p.section] = p.read();
      if (p.serving && !p.serving()) serving = false;
    }
    return { status: serving ? 200 : 503, body };
  }

  private request(req: IncomingMessage, res: ServerResponse): void {
    securityHeaders(res);
    if (req.url === '/healthz') {
      const h = this.healthz();
      res.writeHead(h.status, { 'content-type': 'application/json' }).end(JSON.stringify(h.body));
      return;
    }
    if (req.url === '/metrics') {
      this.metrics
        .text()
        .then((body) => res.writeHead(200, { 'content-type': this.metrics.contentType }).end(body))
        .catch((e: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(e as Error).message}\n`));
      return;
    }
    for (const r of this.routes) if (r(req, res)) return;
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  }

  async listen(): Promise<string> {
    const { host, port } = this.o;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (e: NodeJS.ErrnoException) =>
        reject(new Error(`cannot listen on ${host}:${port} (${e.code ?? e.message})`, { cause: e })),
      );
      this.server.listen(port, host, resolve);
    });
    const addr = this.server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : port;
    this.url = `http://${host.includes(':') ? `[${host}]` : host}:${this.port}`;
    return this.url;
  }

  /** The closers run, last added first (endpoints among them), then the server stops. */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      for (const c of this.closers.reverse())
        await Promise.resolve()
          .then(c)
          .catch((err: unknown) => this.o.log.warn({ err }, 'a part did not close cleanly'));
      this.server.closeAllConnections();
      await new Promise<void>((resolve) => (this.server.listening ? this.server.close(() => resolve()) : resolve()));
    })());
  }
}
