import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import type { Bus } from '../bus/bus.js';
import { LocalBus } from '../bus/local.js';
import { NatsBus } from '../bus/nats.js';
import { AnalyserRole } from '../cluster/analyser.js';
import { EventGateway } from '../cluster/gateway.js';
import { RemoteAnalysis } from '../cluster/remote-analysis.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { EmotionPipeline } from '../pipeline/emotion-pipeline.js';
import { Rooms } from '../sfu/rooms.js';
import { SignalingServer } from '../sfu/signaling.js';
import { WorkerPool } from '../sfu/workers.js';
import { Authenticator, authRequired } from './auth.js';
import { securityHeaders } from './headers.js';
import { Limits } from './limits.js';
import { checkPurpose, ConsentAudit } from './privacy.js';
import { WEB_DIR } from './server.js';
import { staticFiles } from './static.js';
import { requestUrl } from './request-url.js';

export type Role = 'sfu' | 'analyser' | 'gateway';

export interface ClusterServing {
  url: string;
  port: number;
  id: string;
  roles: Role[];
  close(): Promise<void>;
}

export const rolesOf = (cfg: Config): Role[] =>
  cfg.cluster.roles.includes('all') ? ['sfu', 'analyser', 'gateway'] : [...new Set(cfg.cluster.roles as Role[])];

/**
 * `serve --nats URL --role ...`: the roles of one box split over processes joined by
 * NATS (or, with an explicit role list and no --nats, all in one process on the
 * in-process bus). The SFU routes media and hands consenting streams to analysers; analysers
 * decode and analyse and write events into JetStream; gateways serve /events from it.
 * Every role answers /healthz on its own port; while NATS is unreachable it says so, and
 * analysers and gateways answer 503 (an SFU keeps routing calls and stays at 200).
 */
export async function startCluster(cfg: Config, log: Logger): Promise<ClusterServing> {
  const roles = rolesOf(cfg);
  const nats = cfg.cluster.nats ?? null;
  const id = cfg.cluster.id ?? `${hostname().replace(/[^\w-]/g, '-')}-${process.pid}`;
  const retention = { maxAgeMs: cfg.cluster.retentionMs, maxBytes: cfg.cluster.retentionBytes };
  // without NATS the roles meet on the in-process bus: one process, the same code paths
  const bus: Bus = nats ? await NatsBus.open(nats, `arpgnet-edge ${roles.join(',')} ${id}`, retention, log) : new LocalBus(retention);
  const auth = new Authenticator(cfg.auth, authRequired(cfg.auth.mode, cfg.serve.host));
  const limits = new Limits(cfg.limits);
  const closers: Array<() => Promise<void> | void> = [];
  let server: Server | null = null;
  try {
    let sfu: { pool: WorkerPool; rooms: Rooms; remote: RemoteAnalysis } | null = null;
    let analyser: AnalyserRole | null = null;
    let pipeline: EmotionPipeline | null = null;
    let gateway: EventGateway | null = null;
    const serveStatic = roles.includes('sfu') ? staticFiles(WEB_DIR) : null;
    server = createServer((req, res) => {
      securityHeaders(res);
      if (req.url === '/healthz') {
        const body = {
          ok: bus.up,
          degraded: bus.up
            ? null
            : `NATS unreachable (${bus.lastError ?? 'connecting'}): ${roles.includes('sfu') ? 'calls are routed, analysis is paused' : 'this role waits for it'}`,
          id,
          pid: process.pid,
          roles,
          bus: nats ? { nats, connected: bus.up, error: bus.lastError } : { inProcess: true },
          ...(sfu && {
            sfu: {
              rooms: sfu.rooms.size,
              workerPids: sfu.pool.pids(),
              analysis: sfu.remote.counters,
              streams: sfu.remote.streams(),
              analysers: sfu.remote.analyserList(),
              media: sfu.pool.media.snapshot(),
            },
          }),
          ...(analyser && {
            analyser: { streams: analyser.streams(), published: analyser.published, publishFailed: analyser.publishFailed },
          }),
          ...(gateway && { gateway: { subscribers: gateway.subscribers, sent: gateway.sent } }),
        };
        // without NATS an SFU still routes every call (only analysis pauses): it stays in service
        const serving = bus.up || roles.includes('sfu');
        res.writeHead(serving ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(body));
        return;
      }
      if (serveStatic?.(req, res)) return;
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    });
    if (roles.includes('sfu')) {
      checkPurpose(cfg.privacy.purpose, cfg.privacy.exemption);
      const pool = await WorkerPool.create({ count: cfg.sfu.workers, rtcMinPort: cfg.sfu.rtcMinPort, rtcMaxPort: cfg.sfu.rtcMaxPort }, log);
      closers.push(() => pool.close());
      const rooms = new Rooms(pool, log);
      closers.push(() => rooms.closeAll());
      const remote = new RemoteAnalysis(bus, log, id, cfg.sfu.listenIp, cfg.analysis.layer);
      closers.push(() => remote.close());
      const signaling = new SignalingServer(server, {
        rooms,
        analysis: remote,
        log,
        auth,
        audit: new ConsentAudit(cfg.privacy.auditLog),
        limits,
        origins: cfg.auth.origins,
        // a separate gateway serves the events: the pages are told where
        eventsUrls: roles.includes('gateway') ? [] : cfg.cluster.eventsUrls,
        transport: {
          listenIp: cfg.sfu.listenIp,
          announcedAddress: cfg.sfu.announcedAddress,
          maxIncomingBitrate: cfg.sfu.maxIncomingBitrate,
          initialOutgoingBitrate: cfg.sfu.initialOutgoingBitrate,
        },
      });
      closers.push(() => signaling.close());
      remote.start();
      sfu = { pool, rooms, remote };
    }
    if (roles.includes('gateway')) {
      gateway = new EventGateway(server, bus, log, { auth, origins: cfg.auth.origins, limits, highWaterBytes: 1 << 20 });
      closers.push(() => gateway?.close());
    }
    if (roles.includes('analyser')) {
      pipeline = await EmotionPipeline.create(cfg, log);
      closers.push(() => pipeline?.close());
      await pipeline.warmLandmarks(); // announced only once it can take a stream at full speed
    }
    server.on('upgrade', (req, socket) => {
      const path = requestUrl(req)?.pathname;
      if (!((path === '/signaling' && sfu) || (path === '/events' && gateway))) socket.destroy();
    });
    const s = server;
    await new Promise<void>((resolve, reject) => {
      s.once('error', (e: NodeJS.ErrnoException) =>
        reject(new Error(`cannot listen on ${cfg.serve.host}:${cfg.serve.port} (${e.code ?? e.message})`, { cause: e })),
      );
      s.listen(cfg.serve.port, cfg.serve.host, resolve);
    });
    const addr = s.address();
    const port = typeof addr === 'object' && addr ? addr.port : cfg.serve.port;
    const url = `http://${cfg.serve.host.includes(':') ? `[${cfg.serve.host}]` : cfg.serve.host}:${port}`;
    if (pipeline) {
      analyser = new AnalyserRole(bus, pipeline, cfg, log, id, cfg.cluster.advertise, `${url}/healthz`);
      analyser.start();
      const a = analyser;
      closers.push(() => a.close());
    }
    log.info({ url, id, roles, nats }, 'serving');
    let closing: Promise<void> | null = null;
    const close = (): Promise<void> =>
      (closing ??= (async () => {
        log.info('shutting down');
        for (const c of closers.reverse()) await c();
        s.closeAllConnections();
        await new Promise<void>((resolve) => s.close(() => resolve()));
        await bus.close();
        log.info('stopped');
      })());
    return { url, port, id, roles, close };
  } catch (e) {
    for (const c of closers.reverse()) await Promise.resolve(c()).catch(() => undefined);
    server?.close();
    await bus.close();
    throw e;
  }
}
