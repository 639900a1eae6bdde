import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export class SourceError extends Error {
  constructor(
    message: string,
    readonly code: 'not_found' | 'no_video' | 'unsupported' | 'empty' | 'decoder_failed',
  ) {
    super(message);
  }
}

export interface VideoInfo {
  width: number;
  height: number;
  fps: number;
  frames: number | null;
  durationMs: number | null;
  codec: string;
}

interface ProbeJson {
  streams?: Array<{
    width?: number;
    height?: number;
    r_frame_rate?: string;
    avg_frame_rate?: string;
    nb_frames?: string;
    codec_name?: string;
  }>;
  format?: { duration?: string };
}

function rate(r: string | undefined): number {
  const [n, d] = (r ?? '').split('/').map(Number);
  return n && d ? n / d : 0;
}

/** ffprobe's view of the first video stream; inputArgs are the same as the decoder's (e.g. a concat list). */
export async function probe(inputArgs: string[], label: string): Promise<VideoInfo> {
  let out: string;
  try {
    ({ stdout: out } = await run(
      'ffprobe',
      [
        '-v',
        'error',
        '-select_streams',
        'v:0',
        '-show_entries',
        'stream=width,height,r_frame_rate,avg_frame_rate,nb_frames,codec_name:format=duration',
        '-of',
        'json',
        ...inputArgs,
      ],
      { maxBuffer: 1 << 20 },
    ));
  } catch (e) {
    const msg = ((e as { stderr?: string }).stderr ?? (e as Error).message).trim().split('\n').pop();
    throw new SourceError(`${label}: not a readable video (${msg})`, 'unsupported');
  }
  const j = JSON.parse(out) as ProbeJson;
  const s = j.streams?.[0];
  if (!s?.width || !s.height) throw new SourceError(`${label}: no video stream`, 'no_video');
  const fps = rate(s.avg_frame_rate) || rate(s.r_frame_rate) || 25;
  const dur = Number(j.format?.duration);
  return {
    width: s.width,
    height: s.height,
    fps,
    frames: s.nb_frames ? Number(s.nb_frames) : Number.isFinite(dur) ? Math.round(dur * fps) : null,
    durationMs: Number.isFinite(dur) ? dur * 1000 : null,
    codec: s.codec_name ?? 'unknown',
  };
}

/** Fits the frame into maxSide keeping the aspect ratio, even dimensions for the scaler. */
export function analysisSize(w: number, h: number, maxSide: number): { width: number; height: number } {
  const s = Math.min(1, maxSide / Math.max(w, h));
  const even = (v: number): number => Math.max(2, Math.round((v * s) / 2) * 2);
  return { width: even(w), height: even(h) };
}

/** ffmpeg arguments that decode `inputArgs` to raw RGBA frames of width x height on stdout. */
/**
 * maxFps: hand over at most this many frames a second (by media time): every frame must
 * still be decoded, but one that would only be sampled out later is never scaled,
 * converted to RGBA or piped. For live sources, whose frames are timed on arrival.
 */
export function ffmpegDecodeArgs(inputArgs: string[], width: number, height: number, maxFps?: number): string[] {
  // the first frame of each 1/maxFps slot of media time, as RateSampler keeps them (a 25 fps
  // source still gives 10 a second); the small offset absorbs rounding at slot edges
  const slot = (v: string): string => `floor(${v}*${maxFps}+0.01)`;
  const select = maxFps ? `select='isnan(prev_selected_t)+gt(${slot('t')},${slot('prev_selected_t')})',` : '';
  return [
    '-hide_banner',
    '-nostdin',
    '-loglevel',
    'error',
    ...inputArgs,
    '-an',
    '-sn',
    '-vf',
    `${select}scale=${width}:${height}:flags=bilinear`,
    '-fps_mode',
    'passthrough',
    '-pix_fmt',
    'rgba',
    '-f',
    'rawvideo',
    'pipe:1',
  ];
}
