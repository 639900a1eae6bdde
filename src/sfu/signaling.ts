import { randomUUID } from 'node:crypto';
import type { types } from 'mediasoup';
import { WebSocket } from 'ws';
import type { Endpoint } from '../host/host.js';
import type { Logger } from '../log.js';
import { AuthError, type Authenticator, type Grant, type RoomClaims } from '../host/auth.js';
import type { LimitName, Limits, TokenBucket } from '../host/limits.js';
import type { ConsentAudit } from '../host/privacy.js';
import {
  Envelope,
  Request,
  SignalingError,
  type ConsumeReply,
  type ErrorCode,
  type JoinReply,
  type Notification,
  type PlainTransportReply,
  type ProduceReply,
  type WebRtcTransportReply,
} from './protocol.js';
import { Peer, type Room } from './room.js';
import type { Rooms } from './rooms.js';
import { CLOSE } from '../publish/close-codes.js';

export interface TransportSettings {
  listenIp: string;
  /** The address browsers reach when listenIp is 0.0.0.0 or behind NAT. */
  announcedAddress?: string | undefined;
  maxIncomingBitrate: number;
  initialOutgoingBitrate: number;
}

/** What the signaling side tells the analysis side: a peer's producers or consent changed. */
export interface AnalysisControl {
  sync(room: Room, peer: Peer): void;
  isAnalysed(producerId: string): boolean;
  /** A new personal baseline for the faces of an analysed producer (or one track of it). */
  calibrate(producerId: string, track?: string): Promise<boolean>;
}

/**
 * The consent rule, in one place for every analysis side: a video producer is analysed
 * while its owner is in the room and consents, and it is neither paused nor closed.
 * Given what runs now (producer id -> its room), says what to stop and what to start.
 */
export function consentPlan(
  room: Room,
  peer: Peer,
  running: ReadonlyMap<string, { room: Room }>,
): { stop: string[]; start: types.Producer[] } {
  const inRoom = room.peers.get(peer.id) === peer;
  const stop: string[] = [];
  for (const [id, r] of running) {
    if (r.room !== room) continue;
    const p = peer.producers.get(id);
    const owned = [...room.peers.values()].some((q) => q.producers.has(id));
    if (!owned || (p && (!inRoom || !peer.consent || p.paused || p.closed))) stop.push(id);
  }
  const start =
    inRoom && peer.consent
      ? [...peer.producers.values()].filter((p) => p.kind === 'video' && !p.paused && !p.closed && !running.has(p.id))
      : [];
  return { stop, start };
}

/**
 * The /signaling WebSocket endpoint for mediasoup-client. Each client's requests are
 * handled one at a time, in order; any failure is an error reply to that client only.
 */
interface Deps {
  rooms: Rooms;
  transport: TransportSettings;
  analysis: AnalysisControl;
  log: Logger;
  auth?: Authenticator | undefined;
  /** Where consent given and withdrawn is written down. */
  audit?: ConsentAudit | undefined;
  limits: Limits;
  /** Gateways' /events URLs for the pages, when this server has no /events of its own. */
  eventsUrls?: readonly string[] | undefined;
}

export class SignalingServer implements Endpoint {
  readonly path = '/signaling';
  /** Over it the socket is closed (1009); up to it, an oversized message gets an error reply. */
  readonly maxPayload: number;
  private readonly clients = new Set<SignalingClient>();

  constructor(private readonly deps: Deps) {
    this.maxPayload = 4 * deps.limits.s.messageBytes;
  }

  accept(ws: WebSocket): void {
    const c = new SignalingClient(ws, this.deps);
    this.clients.add(c);
    ws.once('close', () => this.clients.delete(c));
  }

  get size(): number {
    return this.clients.size;
  }

  close(): Promise<void> {
    for (const c of this.clients) c.shutdown();
    return Promise.resolve();
  }
}

type Reply = Record<string, unknown>;

/** What a request that outlived its socket ends with (never sent: the socket is gone). */
const GONE = new SignalingError('not_joined', 'the connection closed during the request');

class SignalingClient {
  private room: Room | null = null;
  private peer: Peer | null = null;
  private claims: RoomClaims | null = null;
  private unwatch: (() => void) | null = null;
  private readonly bucket: TokenBucket;
  private queue: Promise<void> = Promise.resolve();
  /** The socket has gone: requests still queued or in flight must not leave anything behind. */
  private closed = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly deps: Deps,
  ) {
    this.bucket = deps.limits.bucket();
    ws.on('message', (raw: Buffer, isBinary) => this.onMessage(raw, isBinary));
    ws.on('close', () => {
      this.closed = true;
      this.leave('connection closed');
    });
    ws.on('error', (e) => deps.log.debug({ err: e }, 'signaling socket error'));
  }

  private send(msg: object): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  private fail(id: number | null, code: ErrorCode, message: string): void {
    this.send({ id, ok: false, error: { code, message } });
  }

  private onMessage(raw: Buffer, isBinary: boolean): void {
    if (isBinary) return this.fail(null, 'bad_request', 'binary messages are not part of the protocol; send JSON text');
    const { limits } = this.deps;
    if (raw.length > limits.s.messageBytes) {
      limits.refuse('message_size');
      return this.fail(null, 'too_large', `message of ${raw.length} bytes; the limit is ${limits.s.messageBytes}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch {
      return this.fail(null, 'bad_request', 'not valid JSON');
    }
    const env = Envelope.safeParse(json);
    if (!env.success) return this.fail(null, 'bad_request', 'expected {"id": <number>, "method": <string>, "data": {...}}');
    const { id } = env.data;
    if (!this.bucket.take()) {
      limits.refuse('rate');
      return this.fail(id, 'rate_limited', `more than ${limits.s.requestsPerSecond} requests a second; slow down`);
    }
    const req = Request.safeParse({ method: env.data.method, data: env.data.data ?? {} });
    if (!req.success) {
      const known = Request.options.some((o) => o.shape.method.value === env.data.method);
      const detail = req.error.issues
        .map(
          (i) => `${i.path.slice(i.path[0] === 'data' ? 1 : 0).join('.') || 'data'}: ${i.message.replace('received undefined', 'missing')}`,
        )
        .join('; ');
      return this.fail(id, 'bad_request', known ? `${env.data.method}: ${detail}` : `unknown method ${JSON.stringify(env.data.method)}`);
    }
    this.queue = this.queue
      // requests queued behind the socket's close are not begun
      .then(() => (this.closed ? Promise.reject(GONE) : this.handle(req.data)))
      .then(
        (data) => this.send({ id, ok: true, data }),
        (e: unknown) => {
          const { code, message } = describe(e);
          this.deps.log.debug({ method: req.data.method, code, err: message }, 'signaling request refused');
          this.fail(id, code, `${req.data.method}: ${message}`);
          // a join refused for its token closes the socket with a code that says why
          if (e instanceof AuthError) this.ws.close(e.code, e.message);
        },
      );
  }

  /** With auth on, what this participant's token does not grant is refused. */
  private need(grant: Grant): void {
    if (this.deps.auth?.required && !this.claims?.grants.includes(grant))
      throw new SignalingError('forbidden', `your token does not grant '${grant}'`);
  }

  private limit(name: LimitName, message: string): never {
    this.deps.limits.refuse(name);
    throw new SignalingError('limit_reached', message);
  }

  private audit(room: Room, peer: Peer, reason: 'join' | 'changed' | 'left'): void {
    this.deps.audit?.record({
      room: room.id,
      identity: this.claims?.identity || peer.name,
      peer: peer.id,
      streams: [...peer.producers.values()].filter((p) => p.kind === 'video').map((p) => p.id),
      consent: reason === 'left' ? false : peer.consent,
      reason,
    });
  }

  private joined(): { room: Room; peer: Peer } {
    if (!this.room || !this.peer) throw new SignalingError('not_joined', 'join a room first');
    return { room: this.room, peer: this.peer };
  }

  private transport(peer: Peer, id: string): types.WebRtcTransport | types.PlainTransport {
    const t = peer.transports.get(id);
    if (!t) throw new SignalingError('not_found', `no transport ${id} (create one first)`);
    return t;
  }

  private webRtcTransport(peer: Peer, id: string): types.WebRtcTransport {
    const t = this.transport(peer, id);
    if (t.type !== 'webrtc') throw new SignalingError('bad_request', `transport ${id} is not a WebRTC transport`);
    return t as types.WebRtcTransport;
  }

  private producer(peer: Peer, id: string): types.Producer {
    const p = peer.producers.get(id);
    if (!p) throw new SignalingError('not_found', `no producer ${id} of yours`);
    return p;
  }

  private async handle(req: Request): Promise<Reply> {
    const { rooms, transport: ts, analysis } = this.deps;
    switch (req.method) {
      case 'join': {
        if (this.peer) throw new SignalingError('already_joined', `already in room ${this.room?.id}`);
        this.claims = (await this.deps.auth?.check(req.data.token, req.data.room, 'join')) ?? null;
        if (req.data.consent) this.need('analyse');
        if (!rooms.has(req.data.room) && rooms.size >= this.deps.limits.s.rooms)
          this.limit('rooms', `the server holds its limit of ${this.deps.limits.s.rooms} rooms`);
        const room = await rooms.get(req.data.room);
        // the socket went while the room was being made: a peer added now would never leave
        if (this.closed) {
          rooms.release(room);
          throw GONE;
        }
        if (room.peers.size >= this.deps.limits.s.peersPerRoom)
          this.limit('peers_per_room', `room ${room.id} holds its limit of ${this.deps.limits.s.peersPerRoom} peers`);
        const peer = new Peer(
          randomUUID(),
          req.data.name,
          req.data.consent,
          (n: Notification) => this.send({ notification: true, ...n }),
          req.data.analysis,
        );
        room.peers.set(peer.id, peer);
        this.room = room;
        this.peer = peer;
        this.unwatch = room.whenClosed(() => this.leave('room closed under the peer'));
        room.broadcast({ method: 'peerJoined', data: { peerId: peer.id, name: peer.name } }, peer);
        room.log.info({ peer: peer.id, name: peer.name, consent: peer.consent }, 'peer joined');
        if (peer.consent) this.audit(room, peer, 'join');
        const reply: JoinReply = {
          peerId: peer.id,
          ...(this.deps.eventsUrls?.length ? { events: [...this.deps.eventsUrls] } : {}),
          routerRtpCapabilities: room.router.rtpCapabilities as unknown as Record<string, unknown>,
          peers: [...room.peers.values()].filter((p) => p !== peer).map((p) => ({ peerId: p.id, name: p.name })),
          producers: room.producers(peer).map((p) => ({ ...p, analysed: analysis.isAnalysed(p.producerId) })),
        };
        return { ...reply };
      }
      case 'setConsent': {
        const { room, peer } = this.joined();
        if (req.data.consent) this.need('analyse');
        const changed = peer.consent !== req.data.consent;
        peer.consent = req.data.consent;
        if (changed) this.audit(room, peer, 'changed');
        analysis.sync(room, peer);
        room.log.info({ peer: peer.id, consent: peer.consent }, 'consent changed');
        return { consent: peer.consent };
      }
      case 'createWebRtcTransport': {
        const { room, peer } = this.joined();
        const listen = { ip: ts.listenIp, ...(ts.announcedAddress ? { announcedAddress: ts.announcedAddress } : {}) };
        const t = await room.router.createWebRtcTransport({
          listenInfos: [
            { protocol: 'udp', ...listen },
            { protocol: 'tcp', ...listen },
          ],
          preferUdp: true,
          initialAvailableOutgoingBitrate: ts.initialOutgoingBitrate,
          appData: { direction: req.data.direction },
        });
        if (req.data.direction === 'send')
          await t.setMaxIncomingBitrate(ts.maxIncomingBitrate).catch((e: unknown) => {
            t.close(); // not yet the peer's: nothing else would close it
            throw e;
          });
        if (!peer.adopt(t)) throw GONE;
        const reply: WebRtcTransportReply = {
          id: t.id,
          iceParameters: { ...t.iceParameters },
          iceCandidates: t.iceCandidates.map((c) => ({ ...c })),
          dtlsParameters: { ...t.dtlsParameters },
        };
        return { ...reply };
      }
      case 'createPlainTransport': {
        const { room, peer } = this.joined();
        const t = await room.router.createPlainTransport({
          listenInfo: { protocol: 'udp', ip: ts.listenIp, ...(ts.announcedAddress ? { announcedAddress: ts.announcedAddress } : {}) },
          rtcpMux: false,
          comedia: true,
        });
        if (!peer.adopt(t)) throw GONE;
        const reply: PlainTransportReply = {
          id: t.id,
          ip: t.tuple.localAddress,
          port: t.tuple.localPort,
          rtcpPort: t.rtcpTuple?.localPort ?? null,
        };
        return { ...reply };
      }
      case 'connectWebRtcTransport': {
        const { peer } = this.joined();
        const t = this.webRtcTransport(peer, req.data.transportId);
        await t.connect({ dtlsParameters: req.data.dtlsParameters as unknown as types.DtlsParameters });
        return {};
      }
      case 'produce': {
        const { room, peer } = this.joined();
        this.need('publish');
        if (room.producers().length >= this.deps.limits.s.producersPerRoom)
          this.limit('producers_per_room', `room ${room.id} holds its limit of ${this.deps.limits.s.producersPerRoom} producers`);
        const t = this.transport(peer, req.data.transportId);
        const producer = await t.produce({
          kind: req.data.kind,
          rtpParameters: req.data.rtpParameters as unknown as types.RtpParameters,
          appData: { ...req.data.appData, peerId: peer.id },
        });
        if (!peer.keeps(producer, t)) throw GONE;
        peer.producers.set(producer.id, producer);
        producer.observer.once('close', () => {
          peer.producers.delete(producer.id);
          room.broadcast({ method: 'producerClosed', data: { producerId: producer.id } });
          analysis.sync(room, peer);
        });
        room.broadcast({ method: 'newProducer', data: peer.info(producer) }, peer);
        analysis.sync(room, peer);
        const reply: ProduceReply = { id: producer.id, analysed: analysis.isAnalysed(producer.id) };
        return { ...reply };
      }
      case 'consume': {
        const { room, peer } = this.joined();
        const t = this.webRtcTransport(peer, req.data.transportId);
        const caps = req.data.rtpCapabilities as unknown as types.RtpCapabilities;
        const found = room.findProducer(req.data.producerId);
        if (!found) throw new SignalingError('not_found', `no producer ${req.data.producerId} in room ${room.id}`);
        if (!room.router.canConsume({ producerId: found.producer.id, rtpCapabilities: caps })) {
          throw new SignalingError('unsupported', `your device cannot receive ${found.producer.kind} of producer ${found.producer.id}`);
        }
        const consumer = await t.consume({ producerId: found.producer.id, rtpCapabilities: caps, paused: true });
        if (!peer.keeps(consumer, t)) throw GONE;
        peer.consumers.set(consumer.id, consumer);
        const gone = (): void => {
          if (!peer.consumers.delete(consumer.id)) return;
          peer.notify({ method: 'consumerClosed', data: { consumerId: consumer.id, producerId: found.producer.id } });
        };
        consumer.on('producerclose', gone);
        consumer.on('transportclose', gone);
        consumer.on('producerpause', () => peer.notify({ method: 'producerPaused', data: { producerId: found.producer.id } }));
        consumer.on('producerresume', () => peer.notify({ method: 'producerResumed', data: { producerId: found.producer.id } }));
        const reply: ConsumeReply = {
          id: consumer.id,
          producerId: found.producer.id,
          kind: consumer.kind,
          rtpParameters: { ...consumer.rtpParameters },
          peerId: found.peer.id,
          name: found.peer.name,
          analysed: analysis.isAnalysed(found.producer.id),
        };
        return { ...reply };
      }
      case 'resumeConsumer': {
        const { peer } = this.joined();
        const c = peer.consumers.get(req.data.consumerId);
        if (!c) throw new SignalingError('not_found', `no consumer ${req.data.consumerId} of yours`);
        await c.resume();
        return {};
      }
      case 'pauseProducer':
      case 'resumeProducer': {
        const { room, peer } = this.joined();
        const p = this.producer(peer, req.data.producerId);
        await (req.method === 'pauseProducer' ? p.pause() : p.resume());
        analysis.sync(room, peer);
        return { paused: p.paused };
      }
      case 'closeProducer': {
        const { peer } = this.joined();
        this.producer(peer, req.data.producerId).close();
        return {};
      }
      case 'leave':
        this.leave('left');
        return {};
      case 'calibrate': {
        const { peer } = this.joined();
        const p = this.producer(peer, req.data.producerId);
        if (!analysis.isAnalysed(p.id)) throw new SignalingError('bad_request', `producer ${p.id} is not analysed (no consent, or paused)`);
        if (!(await analysis.calibrate(p.id, req.data.track)))
          throw new SignalingError(
            'not_found',
            req.data.track ? `no face ${req.data.track} in producer ${p.id}` : `no face in producer ${p.id} yet`,
          );
        return { calibrated: true };
      }
    }
  }

  shutdown(): void {
    this.leave('server shutting down');
    this.ws.close(CLOSE.goingAway, 'server shutting down');
  }

  leave(reason: string): void {
    const { room, peer } = this;
    if (!room || !peer) return;
    this.room = null;
    this.peer = null;
    this.unwatch?.();
    this.unwatch = null;
    if (peer.consent) this.audit(room, peer, 'left'); // leaving ends the consent
    room.peers.delete(peer.id);
    peer.close();
    this.deps.analysis.sync(room, peer);
    room.broadcast({ method: 'peerLeft', data: { peerId: peer.id } });
    room.log.info({ peer: peer.id, reason }, 'peer left');
    this.deps.rooms.release(room);
  }
}

function describe(e: unknown): { code: ErrorCode; message: string } {
  if (e instanceof SignalingError) return { code: e.code, message: e.message };
  if (e instanceof AuthError) return { code: 'unauthorized', message: e.message };
  const err = e as Error;
  if (err?.name === 'UnsupportedError') return { code: 'unsupported', message: err.message };
  if (err instanceof TypeError) return { code: 'bad_request', message: err.message };
  return { code: 'failed', message: err?.message ?? String(e) };
}
