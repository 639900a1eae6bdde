import { createSocket } from 'node:dgram';
import type { types } from 'mediasoup';
import { SourceError } from './ffmpeg.js';

/**
 * The one codec a consumer feeding the decoder may use, with no header extensions and
 * no RTCP feedback: with the router's full capabilities ffmpeg's RTP demuxer stalls on
 * extensions it does not know ("Keyframe missing").
 */
export function decoderCapabilities(producer: types.Producer): types.RtpCapabilities {
  const codec = producer.rtpParameters.codecs[0];
  const mime = codec?.mimeType.toLowerCase();
  if (!codec || (mime !== 'video/vp8' && mime !== 'video/h264')) {
    throw new SourceError(
      `producer ${producer.id}: codec ${codec?.mimeType ?? 'none'} cannot be analysed (VP8 or H264 only)`,
      'unsupported',
    );
  }
  return {
    codecs: [
      {
        kind: 'video',
        mimeType: codec.mimeType,
        clockRate: codec.clockRate,
        ...(codec.parameters ? { parameters: codec.parameters } : {}),
        preferredPayloadType: codec.payloadType,
        rtcpFeedback: [],
      },
    ],
    headerExtensions: [],
  };
}

/** The SDP that tells ffmpeg what arrives on port (RTP) and port + 1 (RTCP). */
export function decoderSdp(codec: types.RtpCodecParameters, ip: string, port: number): string {
  const pt = codec.payloadType;
  const name = codec.mimeType.split('/')[1]!;
  const lines = [
    'v=0',
    `o=- 0 0 IN IP4 ${ip}`,
    's=arpgnet-edge',
    `c=IN IP4 ${ip}`,
    't=0 0',
    `m=video ${port} RTP/AVP ${pt}`,
    `a=rtcp:${port + 1}`,
    `a=rtpmap:${pt} ${name}/${codec.clockRate}`,
  ];
  // the consumer's own codec parameters (H264 profile and packetization), as negotiated
  const fmtp = Object.entries(codec.parameters ?? {}).map(([k, v]) => `${k}=${String(v)}`);
  if (fmtp.length) lines.push(`a=fmtp:${pt} ${fmtp.join(';')}`);
  lines.push('a=recvonly');
  return lines.join('\r\n') + '\r\n';
}

async function bindable(ip: string, port: number): Promise<boolean> {
  const s = createSocket('udp4');
  return new Promise((resolve) => {
    s.once('error', () => resolve(false));
    s.bind(port, ip, () => s.close(() => resolve(true)));
  });
}

/**
 * An even port whose successor is also free, for the decoder's RTP and RTCP sockets.
 * The decoder binds them a moment later; a port taken in between makes it exit, and
 * the restart path picks again.
 */
export async function freePortPair(ip: string): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20000 + 2 * Math.floor(Math.random() * 9999);
    if ((await bindable(ip, port)) && (await bindable(ip, port + 1))) return port;
  }
  throw new SourceError('no free UDP port pair for the decoder', 'decoder_failed');
}
