import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { ROOT } from '../paths.js';
import { EmotionPipeline } from '../pipeline/emotion-pipeline.js';
import { EventHub } from '../publish/ws-hub.js';
import { Authenticator, authRequired } from './auth.js';
import { securityHeaders } from './headers.js';
import { checkPurpose, ConsentAudit } from './privacy.js';
import { Metrics } from './metrics.js';
import { Limits } from './limits.js';
import { Rooms } from '../sfu/rooms.js';
import { SignalingServer } from '../sfu/signaling.js';
import { WorkerPool } from '../sfu/workers.js';
import { LiveAnalysis } from './live-analysis.js';
import { staticFiles } from './static.js';
import { requestUrl } from './request-url.js';

export interface Serving {
  /** http://host:port */
  url: string;
  port: number;
  live: LiveAnalysis;
  hub: EventHub;
  auth: Authenticator;
  metrics: Metrics;
  rooms: Rooms;
  limits: Limits;
  close(): Promise<void>;
}

export const WEB_DIR = join(ROOT, 'dist', 'web');

/**
 * `serve`: one HTTP server with the overlay and kiosk pages, /healthz, and two
 * WebSocket endpoints, /signaling (mediasoup-client) and /events (emotion events),
 * in front of mediasoup workers and the emotion pipeline.
 */
export async function startServer(cfg: Config, log: Logger, o: { webDir?: string } = {}): Promise<Serving> {
  checkPurpose(cfg.privacy.purpose, cfg.privacy.exemption);
  log.info(
    { purpose: cfg.privacy.purpose, exemption: cfg.privacy.exemption, auditLog: cfg.privacy.auditLog ?? null },
    'deployment purpose',
  );
  const audit = new ConsentAudit(cfg.privacy.auditLog);
  const serveStatic = staticFiles(o.webDir ?? WEB_DIR);
  const auth = new Authenticator(cfg.auth, authRequired(cfg.auth.mode, cfg.serve.host));
  if (auth.required) log.info('room tokens are required on /signaling and /events');
  else log.warn({ host: cfg.serve.host }, 'room tokens are NOT required: anyone who reaches this address can join, publish and subscribe');
  const metrics = new Metrics();
  const limits = new Limits(cfg.limits);
  const pipeline = await EmotionPipeline.create(cfg, log);
  let pool: WorkerPool;
  try {
    pool = await WorkerPool.create({ count: cfg.sfu.workers, rtcMinPort: cfg.sfu.rtcMinPort, rtcMaxPort: cfg.sfu.rtcMaxPort }, log);
  } catch (e) {
    await pipeline.close();
    throw e;
  }
  const rooms = new Rooms(pool, log);
  let live: LiveAnalysis | null = null;
  const server: Server = createServer((req, res) => {
    securityHeaders(res);
    if (req.url === '/healthz') {
      const body = JSON.stringify({
        ok: true,
        workers: pool.size,
        workerPids: pool.pids(),
        workerDeaths: pool.deaths,
        rooms: rooms.size,
        roomsRebuilt: rooms.rebuilt,
        connections: limits.connections,
        media: pool.media.snapshot(),
        limitRefusals: limits.refusals,
        subscribers: hub.size,
        eventsDropped: hub.droppedTotal,
        analysis: live?.counters,
        streams: live?.streams() ?? [],
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      return;
    }
    if (req.url === '/metrics') {
      metrics
        .text()
        .then((body) => res.writeHead(200, { 'content-type': metrics.contentType }).end(body))
        .catch((e: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(e as Error).message}\n`));
      return;
    }
    if (serveStatic(req, res)) return;
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  const hub = new EventHub(server, log, {
    maxQueue: cfg.publish.maxQueue,
    highWaterBytes: 1 << 20,
    ringSize: cfg.publish.ringSize,
    ringMaxAgeMs: cfg.publish.ringMaxAgeMs,
    auth,
    origins: cfg.auth.origins,
    limits,
  });
  live = new LiveAnalysis(
    pipeline,
    (e) => {
      metrics.event(e);
      hub.publish(e);
    },
    cfg,
    log,
    metrics,
  );
  metrics.watch({ hub, live, pool, auth, limits });
  hub.onActionsDemand = (on) => live?.setActions(on);
  const signaling = new SignalingServer(server, {
    rooms,
    analysis: live,
    log,
    auth,
    audit,
    limits,
    origins: cfg.auth.origins,
    transport: {
      listenIp: cfg.sfu.listenIp,
      announcedAddress: cfg.sfu.announcedAddress,
      maxIncomingBitrate: cfg.sfu.maxIncomingBitrate,
      initialOutgoingBitrate: cfg.sfu.initialOutgoingBitrate,
    },
  });
  server.on('upgrade', (req, socket) => {
    const path = requestUrl(req)?.pathname;
    if (path !== '/signaling' && path !== '/events') socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new Error(`cannot listen on ${cfg.serve.host}:${cfg.serve.port} (${e.code ?? e.message})`, { cause: e })),
    );
    server.listen(cfg.serve.port, cfg.serve.host, resolve);
  }).catch(async (e: unknown) => {
    pool.close();
    await pipeline.close();
    throw e;
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : cfg.serve.port;
  const url = `http://${cfg.serve.host.includes(':') ? `[${cfg.serve.host}]` : cfg.serve.host}:${port}`;
  log.info({ url, overlay: `${url}/?room=demo&name=me`, kiosk: `${url}/kiosk`, events: `${url.replace('http', 'ws')}/events` }, 'serving');
  let closing: Promise<void> | null = null;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      log.info('shutting down');
      await signaling.close();
      await live.close();
      await hub.close();
      await rooms.closeAll();
      pool.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await pipeline.close();
      log.info('stopped');
    })());
  return { url, port, live, hub, rooms, auth, metrics, limits, close };
}
