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
  /** Decoder restarts allowed before the stream ends with an error. */
  maxRestarts: number;
  log: Logger;
  /** How long the decoder gets to bind its ports before media flows. */
  bindDelayMs?: number;
  keyFrameRetryMs?: number;
  /** The analysis rate: the decoder hands over no more frames than that (see ffmpegDecodeArgs). */
  maxFps?: number | undefined;
}

export interface RtpSource extends Source {
  readonly restarts: number;
  /** ms from open to the first decoded frame, once there is one. */
  readonly firstFrameMs: number | null;
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
    consumer = await transport.consume({ producerId: producer.id, rtpCapabilities: caps, paused: true });
  } catch (e) {
    transport.close();
    throw e;
  }
  const dir = mkdtempSync(join(tmpdir(), 'arpgnet-rtp-'));
  const sdp = join(dir, 'in.sdp');
  writeFileSync(sdp, decoderSdp(consumer.rtpParameters.codecs[0]!, ip, port));
  const t0 = performance.now();
  let decoder: RawVideoDecoder | null = null;
  let decoded = 0;
  let dropped = 0;
  let decodeErrors = 0;
  let restarts = 0;
  let firstFrameMs: number | null = null;

  const stop = (): void => {
    if (source.stopped) return;
    source.stopped = true;
    decoder?.stop();
    consumer.close();
    transport.close();
    rmSync(dir, { recursive: true, force: true });
  };
  // the producer or its transport going away ends this source the same way as stop()
  consumer.on('producerclose', stop);
  consumer.on('transportclose', stop);

  const run = async function* (): AsyncGenerator<Frame> {
    for (;;) {
      const dec = new RawVideoDecoder({
        command: 'ffmpeg',
        args: ffmpegDecodeArgs(
          ['-protocol_whitelist', 'file,udp,rtp', '-probesize', '32', '-analyzeduration', '0', '-i', sdp],
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
      if (consumer.paused) await consumer.resume();
      const askForKeyFrame = (): void => {
        if (dec.decoded === 0 && !source.stopped) consumer.requestKeyFrame().catch(() => undefined);
      };
      askForKeyFrame();
      const kf = setInterval(askForKeyFrame, o.keyFrameRetryMs ?? 500);
      const base = decoded;
      try {
        for await (const f of dec.frames()) {
          clearInterval(kf);
          firstFrameMs ??= performance.now() - t0;
          decoded = base + dec.decoded;
          yield { ...f, index: base + f.index };
        }
      } catch (e) {
        if (!source.stopped) o.log.warn({ stream: o.id, err: (e as Error).message }, 'decoder failed');
      } finally {
        clearInterval(kf);
        decoded = base + dec.decoded;
        dropped += dec.dropped;
        decodeErrors += dec.decodeErrors;
        decoder = null;
      }
      if (source.stopped) return;
      if (++restarts > o.maxRestarts) {
        throw new SourceError(`${o.uri}: decoder failed ${restarts} times; giving up on this stream`, 'decoder_failed');
      }
      o.log.warn({ stream: o.id, restarts }, 'restarting the decoder and asking for a key frame');
    }
  };

  const source: RtpSource = {
    id: o.id,
    kind: 'webrtc',
    uri: o.uri,
    info: { width: o.width, height: o.height, fps: 30, frames: null, durationMs: null, codec: consumer.rtpParameters.codecs[0]!.mimeType },
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
