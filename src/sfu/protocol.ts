import { z } from 'zod';
import { StreamAnalysis } from '../bus/messages.js';

/**
 * The signaling protocol between the overlay page (mediasoup-client) and the server,
 * one JSON object per WebSocket message. Requests carry an id the reply echoes;
 * notifications from the server carry none. mediasoup's own dictionaries
 * (capabilities, RTP and DTLS parameters) are checked for shape here and in depth by
 * mediasoup, whose TypeError becomes an error reply.
 */

const dict = z.record(z.string(), z.unknown());
const id = z.string().min(1).max(64);

export const Request = z.discriminatedUnion('method', [
  z.object({
    method: z.literal('join'),
    data: z.object({
      room: z.string().regex(/^[\w.-]{1,64}$/, 'room: 1-64 letters, digits, _ . -'),
      name: z.string().min(1).max(64),
      /** Analyse this participant's video; nothing of theirs is decoded without it. */
      consent: z.boolean().default(false),
      /** Room token (required when auth is on): it travels in this message, never in a URL. */
      token: z.string().max(8192).optional(),
      /** This participant's analysis settings (which faces count, a personal baseline); the server's config otherwise. */
      analysis: StreamAnalysis.optional(),
    }),
  }),
  z.object({ method: z.literal('setConsent'), data: z.object({ consent: z.boolean() }) }),
  z.object({ method: z.literal('createWebRtcTransport'), data: z.object({ direction: z.enum(['send', 'recv']) }) }),
  /** For RTP senders without WebRTC (ffmpeg, GStreamer, SIP gateways): plain RTP, address learnt from the first packet. */
  z.object({ method: z.literal('createPlainTransport'), data: z.object({}).default({}) }),
  z.object({ method: z.literal('connectWebRtcTransport'), data: z.object({ transportId: id, dtlsParameters: dict }) }),
  z.object({
    method: z.literal('produce'),
    data: z.object({ transportId: id, kind: z.enum(['audio', 'video']), rtpParameters: dict, appData: dict.optional() }),
  }),
  z.object({ method: z.literal('consume'), data: z.object({ transportId: id, producerId: id, rtpCapabilities: dict }) }),
  z.object({ method: z.literal('resumeConsumer'), data: z.object({ consumerId: id }) }),
  z.object({ method: z.literal('pauseProducer'), data: z.object({ producerId: id }) }),
  z.object({ method: z.literal('resumeProducer'), data: z.object({ producerId: id }) }),
  z.object({ method: z.literal('closeProducer'), data: z.object({ producerId: id }) }),
  z.object({ method: z.literal('leave'), data: z.object({}).default({}) }),
  /** Take my face's personal baseline again from now (my own producer only; "calibrate" on the page). */
  z.object({ method: z.literal('calibrate'), data: z.object({ producerId: id, track: id.optional() }) }),
]);
export type Request = z.infer<typeof Request>;
export type Method = Request['method'];

export const Envelope = z.object({ id: z.number().int().nonnegative(), method: z.string(), data: z.unknown() });

export type ErrorCode =
  | 'bad_request'
  | 'too_large'
  | 'not_joined'
  | 'already_joined'
  | 'not_found'
  | 'unsupported'
  | 'failed'
  | 'unauthorized'
  | 'forbidden'
  /** Too many requests on this connection: slow down (limits.requestsPerSecond). */
  | 'rate_limited'
  /** A room or server limit (peers, producers, rooms): the data says which. */
  | 'limit_reached';

export interface ProducerInfo {
  producerId: string;
  peerId: string;
  name: string;
  kind: 'audio' | 'video';
  paused: boolean;
  /** Whether this producer's video is analysed (its owner consented). */
  analysed: boolean;
}

/**
 * Replies to the requests, as the pages read them. mediasoup's own dictionaries are
 * typed by whoever reads them (mediasoup-client on the page), so they stay opaque here.
 */
type Opaque = Record<string, unknown>;
export interface JoinReply {
  peerId: string;
  /** Where the room's events are served, when not on this server's own /events (scale-out gateways). */
  events?: string[];
  routerRtpCapabilities: Opaque;
  peers: Array<{ peerId: string; name: string }>;
  producers: ProducerInfo[];
}
export interface WebRtcTransportReply {
  id: string;
  iceParameters: Opaque;
  iceCandidates: Opaque[];
  dtlsParameters: Opaque;
}
export interface PlainTransportReply {
  id: string;
  ip: string;
  port: number;
  rtcpPort: number | null;
}
export interface ProduceReply {
  id: string;
  analysed: boolean;
}
export interface ConsumeReply {
  id: string;
  producerId: string;
  kind: 'audio' | 'video';
  rtpParameters: Opaque;
  peerId: string;
  name: string;
  analysed: boolean;
}

export type Notification =
  | { method: 'peerJoined'; data: { peerId: string; name: string } }
  | { method: 'peerLeft'; data: { peerId: string } }
  | { method: 'newProducer'; data: ProducerInfo }
  | { method: 'producerClosed'; data: { producerId: string } }
  | { method: 'producerPaused' | 'producerResumed'; data: { producerId: string } }
  | { method: 'consumerClosed'; data: { consumerId: string; producerId: string } }
  | { method: 'analysis'; data: { producerId: string; analysed: boolean } }
  /** rejoin: the room is gone but the server is not (its media worker died); join again to get a new one. */
  | { method: 'roomClosed'; data: { reason: string; rejoin: boolean } };

export class SignalingError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}
