import { hostname } from 'node:os';
import type { Bus, Retention } from '../bus/bus.js';
import { LocalBus } from '../bus/local.js';
import { NatsBus } from '../bus/nats.js';
import type { Config } from '../config.js';
import { Authenticator, authRequired } from '../host/auth.js';
import { Host } from '../host/host.js';
import { Limits } from '../host/limits.js';
import type { Logger } from '../log.js';
import { EmotionPipeline } from '../pipeline/emotion-pipeline.js';
import type { PipelineEvent } from '../publish/events.js';
import { AnalyserRole } from './analyser.js';
import { EventGateway } from './gateway.js';
import { startSfu, type SfuRole } from './sfu.js';

export type Role = 'sfu' | 'analyser' | 'gateway';
export const ROLES: readonly Role[] = ['sfu', 'analyser', 'gateway'];

export interface Serving {
  /** http://host:port */
  url: string;
  port: number;
  id: string;
  roles: Role[];
  bus: Bus;
  host: Host;
  auth: Authenticator;
  limits: Limits;
  sfu: SfuRole | null;
  analyser: AnalyserRole | null;
  gateway: EventGateway | null;
  close(): Promise<void>;
}

export const rolesOf = (cfg: Config): Role[] =>
  cfg.cluster.roles.includes('all') ? [...ROLES] : ROLES.filter((r) => cfg.cluster.roles.includes(r));

/** What every room's event log keeps for subscribers that resume, in the ring or in JetStream. */
export const logRetention = (cfg: Config): Retention => ({
  maxEvents: cfg.publish.ringSize,
  maxAgeMs: cfg.publish.ringMaxAgeMs,
  maxBytes: cfg.cluster.retentionBytes,
});

/**
 * `serve`: the roles this process plays, over one bus, on one host. Role `all` (the
 * default) is the SFU, an analyser and the events gateway in one process on the
 * in-process bus: the single box is the cluster on one machine. With `cluster.nats` the
 * same roles meet on NATS, one or several per process, across hosts. Every role answers
 * /healthz and /metrics; a role that lost its bus says so there (an SFU keeps routing
 * calls and stays in service; analysers and gateways answer 503 until the bus is back).
 */
export interface ServeOptions {
  webDir?: string | undefined;
  /** The bus to meet on, where the caller writes into it too (`run --ws`); else made from the config. */
  bus?: Bus | undefined;
  /** Tokens checked by this authenticator instead of one made from the config. */
  auth?: Authenticator | undefined;
  /** Bytes an /events socket may hold unsent before the gateway stops handing it more. */
  highWaterBytes?: number | undefined;
}

export async function serve(cfg: Config, log: Logger, o: ServeOptions = {}): Promise<Serving> {
  const roles = rolesOf(cfg);
  const nats = cfg.cluster.nats ?? null;
  const id = cfg.cluster.id ?? `${hostname().replace(/[^\w-]/g, '-')}-${process.pid}`;
  const auth = o.auth ?? new Authenticator(cfg.auth, authRequired(cfg.auth.mode, cfg.serve.host));
  if (auth.required) log.info('room tokens are required on /signaling and /events');
  else if (roles.includes('sfu') || roles.includes('gateway'))
    log.warn(
      { host: cfg.serve.host },
      `room tokens are NOT required: anyone who reaches this address can ${roles.includes('sfu') ? 'join, publish and subscribe' : 'subscribe'}`,
    );
  const limits = new Limits(cfg.limits);
  const bus: Bus =
    o.bus ??
    (nats ? await NatsBus.open(nats, `arpgnet-edge ${roles.join(',')} ${id}`, logRetention(cfg), log) : new LocalBus(logRetention(cfg)));
  const host = new Host({
    host: cfg.serve.host,
    port: cfg.serve.port,
    auth,
    origins: cfg.auth.origins,
    limits,
    log,
    identity: () => ({
      ok: bus.up,
      degraded: bus.up
        ? null
        : `${bus.name} unreachable (${bus.lastError ?? 'connecting'}): ${roles.includes('sfu') ? 'calls are routed, analysis is paused' : 'this role waits for it'}`,
      id,
      pid: process.pid,
      roles,
      bus: bus.describe,
    }),
  });
  // without its bus an SFU still routes every call: a process with one stays in service
  const inService = (): boolean => bus.up || roles.includes('sfu');
  const m = host.metrics;
  m.totals(
    'arpgnet_limit_refusals_total',
    'Requests or connections refused by a configured limit (limits.*), by limit',
    'limit',
    () => limits.refusals,
  );
  m.totals(
    'arpgnet_auth_refusals_total',
    'Connections or requests refused for their token or origin, by reason',
    'reason',
    () => auth.refusals,
  );
  m.gauge('arpgnet_connections', 'WebSocket connections open on /signaling and /events', () => limits.connections);
  m.gauge('arpgnet_bus_up', '1 while this process reaches its bus', () => (bus.up ? 1 : 0));
  let sfu: SfuRole | null = null;
  let gateway: EventGateway | null = null;
  let analyser: AnalyserRole | null = null;
  try {
    if (roles.includes('sfu'))
      sfu = await startSfu(host, bus, cfg, log.child({ role: 'sfu' }), {
        id,
        auth,
        limits,
        // with no gateway here, the pages are told where the events are
        eventsUrls: roles.includes('gateway') ? [] : cfg.cluster.eventsUrls,
        webDir: o.webDir,
      });
    if (roles.includes('gateway')) {
      const g = new EventGateway(bus, log.child({ role: 'gateway' }), {
        auth,
        maxQueue: cfg.publish.maxQueue,
        highWaterBytes: o.highWaterBytes ?? 1 << 20,
        id,
      });
      host.endpoint(g);
      m.gauge('arpgnet_subscribers', 'Clients connected to /events', () => g.size);
      m.total('arpgnet_events_sent_total', 'Events sent to /events subscribers', () => g.sent);
      m.totals(
        'arpgnet_events_dropped_total',
        'Events a subscriber did not get, by reason (slow_client: its queue overflowed; expired_from_ring: gone from the log before it resumed)',
        'reason',
        () => g.dropped,
      );
      host.health({ section: 'gateway', read: () => g.health(), serving: inService });
      gateway = g;
    }
    let pipeline: EmotionPipeline | null = null;
    if (roles.includes('analyser')) {
      pipeline = await EmotionPipeline.create(cfg, log);
      const p = pipeline;
      host.onClose(() => p.close());
      await pipeline.warmFaceFinders(); // announced only once it can take a stream at full speed
    }
    const url = await host.listen();
    if (pipeline) {
      const a = new AnalyserRole(bus, pipeline, cfg, log.child({ role: 'analyser' }), id, cfg.cluster.advertise, `${url}/healthz`, m);
      a.start();
      host.onClose(() => a.close());
      host.health({ section: 'analyser', read: () => a.healthSection(), serving: inService });
      analyser = a;
    }
    log.info({ url, id, roles, bus: bus.describe, overlay: sfu ? `${url}/?room=demo&name=me` : undefined }, 'serving');
  } catch (e) {
    await host.close();
    await bus.close();
    throw e;
  }
  let closing: Promise<void> | null = null;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      log.info('shutting down');
      await host.close();
      await bus.close();
      log.info('stopped');
    })());
  return { url: host.url, port: host.port, id, roles, bus, host, auth, limits, sfu, analyser, gateway, close };
}

export interface EventsServing {
  url: string;
  bus: LocalBus;
  gateway: EventGateway;
  publish(e: PipelineEvent): void;
  close(): Promise<void>;
}

/**
 * `run --ws PORT`: the events gateway alone, on the in-process log that `run` writes
 * into: the same /events as a call server (resume, gap, v=1, stream_start replay),
 * without tokens (it serves one local file or camera).
 */
export async function serveEvents(
  cfg: Config,
  log: Logger,
  port: number,
  o: { auth?: Authenticator; highWaterBytes?: number } = {},
): Promise<EventsServing> {
  const bus = new LocalBus(logRetention(cfg));
  const s = await serve(
    {
      ...cfg,
      serve: { ...cfg.serve, host: cfg.publish.host, port },
      cluster: { ...cfg.cluster, roles: ['gateway'], nats: undefined, id: cfg.cluster.id ?? 'run' },
    },
    log,
    { bus, auth: o.auth ?? new Authenticator(cfg.auth, false), highWaterBytes: o.highWaterBytes },
  );
  return { url: s.url, bus, gateway: s.gateway!, publish: (e) => void bus.publishEvent(e), close: () => s.close() };
}
