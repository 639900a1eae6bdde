import type { StreamAnalysis } from '../../src/bus/messages.js';
import { Device, type types } from 'mediasoup-client';
import type { JoinReply, ProducerInfo, ProduceReply, WebRtcTransportReply } from '../../src/sfu/protocol.js';
import { Signaling, wsUrl } from './signaling.js';

export interface Joined {
  sig: Signaling;
  device: Device;
  peerId: string;
  producers: ProducerInfo[];
  /** The room's /events endpoints: the server's own, or the gateways it names. */
  events: string[];
}

/**
 * The page's room token, from the URL fragment (#token=...): a fragment never reaches the
 * server, so the token stays out of access logs; it travels only inside WebSocket messages.
 */
export const pageToken = (): string | undefined => new URLSearchParams(location.hash.slice(1)).get('token') ?? undefined;

/** Join a room and load the device with the router's capabilities. */
export async function joinRoom(room: string, name: string, consent: boolean, analysis?: StreamAnalysis): Promise<Joined> {
  const sig = await Signaling.open(wsUrl('/signaling'));
  const token = pageToken();
  const j = await sig.request<JoinReply>('join', {
    room,
    name,
    consent,
    ...(token ? { token } : {}),
    ...(analysis ? { analysis } : {}),
  });
  const device = new Device();
  // mediasoup's dictionaries are opaque in the protocol; mediasoup-client checks them
  await device.load({ routerRtpCapabilities: j.routerRtpCapabilities as unknown as types.RtpCapabilities });
  return { sig, device, peerId: j.peerId, producers: j.producers, events: j.events ?? [wsUrl('/events')] };
}

/** A WebRTC transport whose DTLS connect and (for send) produce go through signaling. */
export async function createTransport(
  sig: Signaling,
  device: Device,
  direction: 'send' | 'recv',
  onFailed: () => void,
): Promise<types.Transport> {
  const r = await sig.request<WebRtcTransportReply>('createWebRtcTransport', { direction });
  const p = {
    id: r.id,
    iceParameters: r.iceParameters as unknown as types.IceParameters,
    iceCandidates: r.iceCandidates as unknown as types.IceCandidate[],
    dtlsParameters: r.dtlsParameters as unknown as types.DtlsParameters,
  };
  const t = direction === 'send' ? device.createSendTransport(p) : device.createRecvTransport(p);
  t.on('connect', ({ dtlsParameters }, ok, fail) => {
    sig.request('connectWebRtcTransport', { transportId: t.id, dtlsParameters }).then(() => ok(), fail);
  });
  if (direction === 'send') {
    t.on('produce', ({ kind, rtpParameters, appData }, ok, fail) => {
      sig.request<ProduceReply>('produce', { transportId: t.id, kind, rtpParameters, appData }).then((r) => ok({ id: r.id }), fail);
    });
  }
  t.on('connectionstatechange', (s) => {
    if (s === 'failed') onFailed();
  });
  return t;
}

/** The low simulcast layer is this many times smaller on each side. */
const LOW_SCALE = 2;

/**
 * Send a camera track at its full resolution from the start (Chrome otherwise starts
 * near 300 kbps at a lower resolution); the server is told the picture size so it
 * decodes at the right aspect. With `simulcast` (calls) a half-size layer goes beside
 * the full one: the analysis decodes that (src/sfu/layers.ts), the other participants get
 * what their bandwidth allows. The kiosk sends one full layer: its faces are far away.
 */
export async function sendCamera(send: types.Transport, track: MediaStreamTrack, o: { simulcast: boolean }): Promise<types.Producer> {
  const s = track.getSettings();
  return send.produce({
    track,
    encodings: o.simulcast
      ? [
          { scaleResolutionDownBy: LOW_SCALE, maxBitrate: 250_000 },
          { scaleResolutionDownBy: 1, maxBitrate: 1_000_000 },
        ]
      : [{ maxBitrate: 1_000_000 }],
    codecOptions: { videoGoogleStartBitrate: 1000 },
    // the page owns the camera: a rejoin closes the transport but must not end the track
    stopTracks: false,
    appData: { width: s.width ?? 640, height: s.height ?? 480, ...(o.simulcast ? { lowScale: LOW_SCALE } : {}) },
  });
}

/** Delay before rejoin attempt n: doubling from 0.5 s to 10 s, jittered so a room's pages do not return at once. */
export const backoffMs = (attempt: number): number => Math.min(10_000, 500 * 2 ** attempt) * (0.5 + Math.random() * 0.5);

/**
 * Keeps a page in its call: when the call is lost (the signaling socket closed, or the
 * server says the room died with its media worker), the page tears its side down and
 * connects again with backoff, without anyone touching it. stop() is the user leaving.
 */
export class Rejoiner {
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;

  constructor(
    private readonly connect: () => Promise<void>,
    private readonly teardown: () => void,
    private readonly onRetry: (inMs: number, why: string) => void,
  ) {}

  lost(why: string): void {
    if (this.stopped || this.timer) return;
    this.teardown();
    const ms = backoffMs(this.attempt++);
    this.onRetry(ms, why);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.stopped) return;
      this.connect().then(
        () => (this.attempt = 0),
        (e: Error) => this.lost(e.message),
      );
    }, ms);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
