import { join } from 'node:path';
import type { Bus } from '../bus/bus.js';
import type { Config } from '../config.js';
import type { Authenticator } from '../host/auth.js';
import type { Host } from '../host/host.js';
import type { Limits } from '../host/limits.js';
import { checkPurpose, ConsentAudit } from '../host/privacy.js';
import { staticFiles } from '../host/static.js';
import type { Logger } from '../log.js';
import { ROOT } from '../paths.js';
import { Rooms } from '../sfu/rooms.js';
import { SignalingServer } from '../sfu/signaling.js';
import { WorkerPool } from '../sfu/workers.js';
import { StreamPlacement } from './placement.js';
import { Reporter } from './reporter.js';
import { Webhooks } from '../publish/webhooks.js';

export const WEB_DIR = join(ROOT, 'dist', 'web');

export interface SfuRole {
  pool: WorkerPool;
  rooms: Rooms;
  placement: StreamPlacement;
  signaling: SignalingServer;
  reporter: Reporter;
}

/**
 * The SFU role: mediasoup workers, a router per room, the /signaling endpoint and the
 * pages; consenting producers are placed on analysers over the bus, and their media
 * sent there over a PlainTransport. Without its bus it keeps routing calls (analysis
 * waits), so it stays in service.
 */
export async function startSfu(
  host: Host,
  bus: Bus,
  cfg: Config,
  log: Logger,
  o: { id: string; auth: Authenticator; limits: Limits; eventsUrls: readonly string[]; webDir?: string | undefined },
): Promise<SfuRole> {
  checkPurpose(cfg.privacy.purpose, cfg.privacy.exemption);
  log.info(
    { purpose: cfg.privacy.purpose, exemption: cfg.privacy.exemption, auditLog: cfg.privacy.auditLog ?? null },
    'deployment purpose',
  );
  host.route(staticFiles(o.webDir ?? WEB_DIR));
  const pool = await WorkerPool.create({ count: cfg.sfu.workers, rtcMinPort: cfg.sfu.rtcMinPort, rtcMaxPort: cfg.sfu.rtcMaxPort }, log);
  host.onClose(() => pool.close());
  let reporter: Reporter | null = null;
  const rooms = new Rooms(pool, log, (room) => reporter?.roomClosed(room));
  host.onClose(() => rooms.closeAll());
  const w = cfg.webhooks;
  const webhooks = w.endpoints.length ? new Webhooks(w, log.child({ part: 'webhooks' })) : null;
  reporter = new Reporter(bus, log.child({ part: 'reporter' }), webhooks, (room) => rooms.has(room), {
    settleMs: 10_000,
    idleMs: 10 * 60_000,
  });
  const rep = reporter;
  host.onClose(() => rep.close());
  await rep.start().catch((e: unknown) => log.warn({ err: e }, 'room summaries and webhooks are off: the event log is not readable'));
  const placement = new StreamPlacement(bus, log, o.id, cfg.sfu.listenIp, cfg.analysis.layer);
  host.onClose(() => placement.close());
  const signaling = new SignalingServer({
    rooms,
    analysis: placement,
    log,
    auth: o.auth,
    audit: new ConsentAudit(cfg.privacy.auditLog),
    limits: o.limits,
    eventsUrls: o.eventsUrls,
    transport: {
      listenIp: cfg.sfu.listenIp,
      announcedAddress: cfg.sfu.announcedAddress,
      maxIncomingBitrate: cfg.sfu.maxIncomingBitrate,
      initialOutgoingBitrate: cfg.sfu.initialOutgoingBitrate,
    },
  });
  host.endpoint(signaling);
  placement.start();
  const m = host.metrics;
  m.total('arpgnet_worker_deaths_total', 'mediasoup worker processes that died', () => pool.deaths);
  m.total(
    'arpgnet_streams_refused_total',
    'Consenting streams that found no analyser with room (then they wait for one)',
    () => placement.counters.refused,
  );
  m.total('arpgnet_failovers_total', 'Streams moved to another analyser after theirs was lost', () => placement.counters.failovers);
  m.gauge('arpgnet_rooms', 'Rooms open', () => rooms.size);
  if (webhooks) {
    m.totals(
      'arpgnet_webhook_deliveries_total',
      'Webhook deliveries by outcome (retried: an attempt failed and will be made again; failed: given up; dropped: its queue was full)',
      'outcome',
      () => webhooks.counts,
    );
    m.gauge('arpgnet_webhook_queue', 'Webhook deliveries waiting, over every endpoint', () => webhooks.queued);
  }
  m.gauge('arpgnet_peers', 'Participants joined to a room', () => rooms.peers);
  // each transport holds UDP ports: a count that only grows is a leak
  m.gauges('arpgnet_media_objects', 'mediasoup routers, transports, producers and consumers open, by kind', 'kind', () =>
    pool.media.snapshot(),
  );
  m.gauge('arpgnet_streams_placed', 'Consenting streams placed or waiting for an analyser', () => placement.active);
  host.health({
    section: 'sfu',
    read: () => ({
      workers: pool.size,
      workerPids: pool.pids(),
      workerDeaths: pool.deaths,
      rooms: rooms.size,
      roomsRebuilt: rooms.rebuilt,
      peers: rooms.peers,
      signalingClients: signaling.size,
      media: pool.media.snapshot(),
      placement: placement.counters,
      streams: placement.streams(),
      analysers: placement.analyserList(),
      reports: rep.health(),
    }),
  });
  return { pool, rooms, placement, signaling, reporter: rep };
}
