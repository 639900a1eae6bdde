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
export function ffmpegDecodeArgs(inputArgs: string[], width: number, height: number): string[] {
  return [
    '-hide_banner',
    '-nostdin',
    '-loglevel',
    'error',
    ...inputArgs,
    '-an',
    '-sn',
    '-vf',
    `scale=${width}:${height}:flags=bilinear`,
    '-fps_mode',
    'passthrough',
    '-pix_fmt',
    'rgba',
    '-f',
    'rawvideo',
    'pipe:1',
  ];
}
