import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { types } from 'mediasoup';
import type { Logger } from '../log.js';
import { ffmpegDecodeArgs, SourceError } from './ffmpeg.js';
import type { Frame } from './frame.js';
import { RawVideoDecoder } from './raw-decoder.js';
import { decoderCapabilities, decoderSdp, freePortPair } from './rtp-sdp.js';
import type { Source } from './source.js';

export interface RtpSourceOptions {
  id: string;
  uri: string;
  /** Decoded frame size: the producer's picture scaled to the analysis size. */
  width: number;
  height: number;
  /** Decoder restarts in a row allowed before the stream ends with an error (a decoder that ran well for a while resets the count). */
  maxRestarts: number;
  log: Logger;
  /** How long the decoder gets to bind its ports before media flows. */
  bindDelayMs?: number;
  keyFrameRetryMs?: number;
  /**
   * A decoder that has delivered frames and then none for this long is restarted: garbage
   * or a burst of loss can leave ffmpeg's RTP reader waiting for packets that never come.
   */
  stallMs?: number;
  /** The analysis rate: the decoder hands over no more frames than that (see ffmpegDecodeArgs). */
  maxFps?: number | undefined;
  /** The simulcast layer to decode (src/sfu/layers.ts). */
  preferredLayers?: { spatialLayer: number } | undefined;
}

export interface RtpSource extends Source {
  readonly restarts: number;
  /** ms from open to the first decoded frame, once there is one. */
  readonly firstFrameMs: number | null;
}

/**
 * What the decoder side needs from whoever sends it the RTP: a key frame on request,
 * how many packets were sent (to tell a stuck decoder from a silent sender), when to
 * start sending, and what to close with it. mediasoup in this process, or an SFU on
 * another host over the bus.
 */
export interface RtpFeed {
  requestKeyFrame(): void;
  /** Packets sent to the decoder so far; absent = unknown, a quiet decoder is then taken as stuck. */
  packets?: (() => Promise<number>) | undefined;
  /** Called once the decoder listens (a paused consumer resumes here). */
  start(): Promise<void>;
  close(): void;
  /** Set by the source: the feed calls it when its media goes away (producer closed). */
  onGone?: () => void;
}

/**
 * One video producer of a call as a Source: a paused Consumer on a PlainTransport
 * sends plain RTP to an ffmpeg decoder reading an SDP, which writes RGBA frames at
 * the analysis size. ffmpeg never asks for a key frame, so we do, until the first
 * frame arrives and again after every decoder restart.
 */
export async function openRtpSource(router: types.Router, producer: types.Producer, o: RtpSourceOptions): Promise<RtpSource> {
  const caps = decoderCapabilities(producer);
  const ip = '127.0.0.1';
  const transport = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip }, rtcpMux: false, comedia: false });
  let consumer: types.Consumer;
  let port: number;
  try {
    port = await freePortPair(ip);
    await transport.connect({ ip, port, rtcpPort: port + 1 });
    consumer = await transport.consume({
      producerId: producer.id,
      rtpCapabilities: caps,
      paused: true,
      ...(o.preferredLayers ? { preferredLayers: o.preferredLayers } : {}),
    });
  } catch (e) {
    transport.close();
    throw e;
  }
  const feed: RtpFeed = {
    requestKeyFrame: () => void consumer.requestKeyFrame().catch(() => undefined),
    packets: async () => (await consumer.getStats()).reduce((a, x) => a + x.packetCount, 0),
    start: async () => {
      if (consumer.paused) await consumer.resume();
    },
    close: () => {
      consumer.close();
      transport.close();
    },
  };
  // the producer or its transport going away ends this source the same way as stop()
  consumer.on('producerclose', () => feed.onGone?.());
  consumer.on('transportclose', () => feed.onGone?.());
  return decodeRtp(decoderSdp(consumer.rtpParameters.codecs[0]!, ip, port), consumer.rtpParameters.codecs[0]!.mimeType, feed, o);
}

/**
 * The decoder side: ffmpeg reads the SDP and the RTP it describes, restarted (with a
 * key frame asked for) when it fails or stalls, a bounded number of times in a row.
 */
export function decodeRtp(sdpText: string, codec: string, feed: RtpFeed, o: RtpSourceOptions): RtpSource {
  const dir = mkdtempSync(join(tmpdir(), 'arpgnet-rtp-'));
  const sdp = join(dir, 'in.sdp');
  writeFileSync(sdp, sdpText);
  const t0 = performance.now();
  let decoder: RawVideoDecoder | null = null;
  let decoded = 0;
  let dropped = 0;
  let decodeErrors = 0;
  let restarts = 0;
  let failedInRow = 0;
  let firstFrameMs: number | null = null;

  const stop = (): void => {
    if (source.stopped) return;
    source.stopped = true;
    decoder?.stop();
    feed.close();
    rmSync(dir, { recursive: true, force: true });
  };
  feed.onGone = stop;

  const run = async function* (): AsyncGenerator<Frame> {
    for (;;) {
      // one decoding thread: ffmpeg's default (frame threads, one per core) cost a third more CPU
      // across twenty small streams and holds frames back by one per thread (bench:serve)
      const dec = new RawVideoDecoder({
        command: 'ffmpeg',
        args: ffmpegDecodeArgs(
          ['-threads', '1', '-protocol_whitelist', 'file,udp,rtp', '-probesize', '32', '-analyzeduration', '0', '-i', sdp],
          o.width,
          o.height,
          o.maxFps,
        ),
        width: o.width,
        height: o.height,
        policy: 'drop-oldest',
        timestamp: () => performance.now() - t0,
        label: o.uri,
      });
      decoder = dec;
      dec.start();
      await sleep(o.bindDelayMs ?? 300);
      if (source.stopped) return;
      await feed.start();
      const askForKeyFrame = (): void => {
        if (dec.decoded === 0 && !source.stopped) feed.requestKeyFrame();
      };
      askForKeyFrame();
      const kf = setInterval(askForKeyFrame, o.keyFrameRetryMs ?? 500);
      const base = decoded;
      const started = performance.now();
      let lastFrame = started;
      const stallMs = o.stallMs ?? 3000;
      let packets = -1;
      // frames stopped after they had flowed: first ask the sender for a key frame (a WebRTC
      // sender recovers from loss with one); if packets still reach the decoder and no frame
      // comes out, the decoder is stuck (garbage can leave ffmpeg's RTP reader waiting for
      // packets that never come) and is replaced. A silent sender is waited for, not punished.
      const watchdog = setInterval(() => {
        if (source.stopped) return;
        const quiet = performance.now() - lastFrame;
        if (quiet > 1000 && dec.decoded > 0) feed.requestKeyFrame();
        if (quiet <= (dec.decoded > 0 ? stallMs : 3 * stallMs)) return;
        const replace = (): void => {
          if (source.stopped || decoder !== dec) return;
          o.log.warn({ stream: o.id, quietMs: Math.round(performance.now() - lastFrame) }, 'decoder stalled');
          dec.stop();
        };
        // without a packet count the quiet decoder is taken as stuck
        if (!feed.packets) return replace();
        feed.packets().then(
          (n) => {
            const flowing = packets >= 0 && n > packets;
            packets = n;
            if (flowing) replace();
          },
          () => undefined,
        );
      }, 500);
      try {
        for await (const f of dec.frames()) {
          clearInterval(kf);
          lastFrame = performance.now();
          firstFrameMs ??= lastFrame - t0;
          decoded = base + dec.decoded;
          yield { ...f, index: base + f.index };
        }
      } catch (e) {
        if (!source.stopped) o.log.warn({ stream: o.id, err: e }, 'decoder failed');
      } finally {
        clearInterval(kf);
        clearInterval(watchdog);
        decoded = base + dec.decoded;
        dropped += dec.dropped;
        decodeErrors += dec.decodeErrors;
        decoder = null;
      }
      if (source.stopped) return;
      // a decoder that delivered frames for a while was healthy: its end starts a new count
      if (lastFrame - started > 10_000) failedInRow = 0;
      restarts++;
      if (++failedInRow > o.maxRestarts) {
        throw new SourceError(`${o.uri}: decoder failed ${failedInRow} times in a row; giving up on this stream`, 'decoder_failed');
      }
      o.log.warn({ stream: o.id, restarts }, 'restarting the decoder and asking for a key frame');
    }
  };

  const source: RtpSource = {
    id: o.id,
    kind: 'webrtc',
    uri: o.uri,
    info: { width: o.width, height: o.height, fps: 30, frames: null, durationMs: null, codec },
    width: o.width,
    height: o.height,
    async *frames() {
      try {
        yield* run();
      } finally {
        stop();
      }
    },
    stats: () => ({ decoded, dropped: dropped + (decoder?.dropped ?? 0), decodeErrors: decodeErrors + (decoder?.decodeErrors ?? 0) }),
    stopped: false,
    stop,
    get restarts() {
      return restarts;
    },
    get firstFrameMs() {
      return firstFrameMs;
    },
  };
  return source;
}
