/** Load generators for calls: a signaling client, RTP senders of real clips, an events subscriber. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import type { PipelineEvent } from '../../src/publish/events.js';
import type { RelayHost } from './relay-host.js';
import { cachedClip, VIDEOS } from './clips.js';

/** A signaling client as a test peer: requests with replies, notifications kept in order. */
export class TestPeer {
  private nextId = 1;
  private readonly pending = new Map<number, (m: Reply) => void>();
  readonly notifications: Array<{ method: string; data: Record<string, unknown> }> = [];
  readonly stray: Reply[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => {
      const m = JSON.parse(String(d)) as Reply & { notification?: boolean; method?: string };
      if (m.notification) this.notifications.push({ method: m.method!, data: m.data as Record<string, unknown> });
      else if (typeof m.id === 'number' && this.pending.has(m.id)) {
        this.pending.get(m.id)!(m);
        this.pending.delete(m.id);
      } else this.stray.push(m);
    });
  }

  static open(base: string): Promise<TestPeer> {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/signaling`);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new TestPeer(ws)));
      ws.once('error', reject);
    });
  }

  /** The whole reply, ok or not. */
  call(method: string, data: unknown = {}): Promise<Reply> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.ws.send(JSON.stringify({ id, method, data }));
    });
  }

  /** The reply's data; throws on an error reply. */
  async request<T = Record<string, unknown>>(method: string, data: unknown = {}): Promise<T> {
    const r = await this.call(method, data);
    if (!r.ok) throw new Error(`${method}: ${r.error?.code}: ${r.error?.message}`);
    return r.data as T;
  }

  /** Next message that is not a reply to a pending request (an error reply to a message without an id). */
  async nextStray(timeoutMs = 3000): Promise<Reply> {
    const t0 = Date.now();
    while (!this.stray.length && Date.now() - t0 < timeoutMs) await new Promise((r) => setTimeout(r, 20));
    const m = this.stray.shift();
    if (!m) throw new Error('no reply');
    return m;
  }

  close(): void {
    this.ws.close();
  }
}

export interface Reply {
  id: number | null;
  ok: boolean;
  data?: unknown;
  error?: { code: string; message: string };
}

export const H264_PT = 102;

/** The producer parameters matching what rtpSender() sends. */
export const h264Producer = (ssrc: number): { kind: 'video'; rtpParameters: { codecs: object[]; encodings: Array<{ ssrc: number }> } } => ({
  kind: 'video',
  rtpParameters: {
    codecs: [
      {
        mimeType: 'video/H264',
        payloadType: H264_PT,
        clockRate: 90000,
        parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f', 'level-asymmetry-allowed': 1 },
        rtcpFeedback: [],
      },
    ],
    encodings: [{ ssrc }],
  },
});

/**
 * A real face clip re-encoded once as H264 constrained baseline with a key frame every
 * second and parameter sets in every key frame: an RTP sender that ignores PLI must
 * still let a decoder start within a second.
 */
export function h264Clip(name = 'd18', maxSide?: number): string {
  // a smaller copy stands for a simulcast layer: what the SFU forwards when asked for the low one
  const scale = maxSide ? ['-vf', `scale='if(gt(iw,ih),${maxSide},-2)':'if(gt(iw,ih),-2,${maxSide})'`] : [];
  // prettier-ignore
  return cachedClip(`${name}${maxSide ? `-${maxSide}` : ''}-baseline.mkv`, [
    '-i', join(VIDEOS, `${name}.mp4`), '-an', ...scale, '-c:v', 'libx264', '-profile:v', 'baseline', '-preset', 'veryfast',
    '-g', '25', '-bf', '0', '-x264-params', 'repeat-headers=1', '-pix_fmt', 'yuv420p', '-f', 'matroska',
  ]);
}

/** ffmpeg sending a clip in a loop as RTP at its own pace (no re-encoding). */
export function rtpSender(clip: string, ip: string, port: number, rtcpPort: number, ssrc: number): ChildProcess {
  return spawn(
    'ffmpeg',
    [
      '-loglevel',
      'error',
      '-re',
      '-stream_loop',
      '-1',
      '-i',
      clip,
      '-map',
      '0:v',
      '-c:v',
      'copy',
      '-f',
      'rtp',
      '-payload_type',
      String(H264_PT),
      '-ssrc',
      String(ssrc),
      `rtp://${ip}:${port}?rtcpport=${rtcpPort}&pkt_size=1200`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
}

/** A subscriber on /events collecting everything. */
export function subscribeEvents(base: string, query = ''): Promise<{ ws: WebSocket; got: PipelineEvent[] }> {
  const ws = new WebSocket(`${base.replace('http', 'ws')}/events${query}`);
  const got: PipelineEvent[] = [];
  ws.on('message', (d) => got.push(JSON.parse(String(d)) as PipelineEvent));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, got }));
    ws.once('error', reject);
  });
}

/** Waits for `cond`; `what` names it in the error, as a function when it should say how far it got. */
export async function until(cond: () => boolean, timeoutMs: number, what: string | (() => string)): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface PlainTransportInfo {
  id: string;
  ip: string;
  port: number;
  rtcpPort: number;
}

/**
 * Publish a real clip from a joined peer: a plain transport (made here unless given),
 * ffmpeg sending the clip to it (or to `to`, e.g. a relay in front of it), the producer.
 */
export async function publishClip(
  peer: TestPeer,
  ssrc: number,
  o: {
    clip?: string;
    appData?: Record<string, unknown>;
    transport?: PlainTransportInfo;
    to?: { ip: string; port: number };
    /**
     * Simulcast as a browser sends it: this smaller copy of the clip as the low layer
     * beside the full one, two senders through one relay of `relays` (one address, as
     * from one browser), the producer declaring both encodings lowest first.
     */
    lowLayer?: { clip: string; scale: number; relays: RelayHost };
  } = {},
): Promise<{ producerId: string; analysed: boolean; sender: ChildProcess; stop: () => void }> {
  const t = o.transport ?? (await peer.request<PlainTransportInfo>('createPlainTransport'));
  const relayPort = o.lowLayer ? await o.lowLayer.relays.open(o.to ?? t) : null;
  const to = relayPort ? { ip: '127.0.0.1', port: relayPort } : (o.to ?? t);
  const sender = rtpSender(o.clip ?? h264Clip(), to.ip, to.port, t.rtcpPort, ssrc);
  const low = o.lowLayer ? rtpSender(o.lowLayer.clip, to.ip, to.port, t.rtcpPort, ssrc + 1) : null;
  const producer = h264Producer(ssrc);
  if (o.lowLayer) producer.rtpParameters.encodings = [{ ssrc: ssrc + 1 }, { ssrc }];
  const p = await peer.request<{ id: string; analysed: boolean }>('produce', {
    transportId: t.id,
    ...producer,
    ...(o.appData || o.lowLayer ? { appData: { ...o.appData, ...(o.lowLayer ? { lowScale: o.lowLayer.scale } : {}) } } : {}),
  });
  const stop = (): void => {
    sender.kill('SIGKILL');
    low?.kill('SIGKILL');
  };
  return { producerId: p.id, analysed: p.analysed, sender, stop };
}

/**
 * A consenting participant sending a real face clip over RTP, watched until its first
 * emotion event: the healthy stream that tests and benchmarks disturb everything else around.
 */
export async function analysedSender(
  base: string,
  room: string,
  ssrc: number,
): Promise<{ peer: TestPeer; producerId: string; sender: ChildProcess; sub: { ws: WebSocket; got: PipelineEvent[] } }> {
  const sub = await subscribeEvents(base, `?room=${room}`);
  const peer = await TestPeer.open(base);
  await peer.request('join', { room, name: 'good', consent: true });
  const { producerId, sender } = await publishClip(peer, ssrc);
  await until(() => sub.got.some((e) => e.stream === producerId && e.type === 'emotion'), 60_000, 'the healthy stream');
  return { peer, producerId, sender, sub };
}
