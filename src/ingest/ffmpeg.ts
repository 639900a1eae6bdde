import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { FramePool, type QueuePolicy } from './frame-pool.js';
import type { Frame } from './frame.js';

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

export interface DecoderOptions {
  inputArgs: string[];
  width: number;
  height: number;
  policy: QueuePolicy;
  /** Media time of frame i; files use i / fps, live sources their arrival time. */
  timestamp: (index: number) => number;
  label: string;
}

/**
 * One ffmpeg child process decoding to raw RGBA at the analysis size. stdout chunks
 * are copied once into pooled frame buffers; nothing else copies pixels.
 */
export class FfmpegDecoder {
  private proc: ChildProcess | null = null;
  private readonly pool: FramePool;
  private readonly stderrTail: string[] = [];
  decodeErrors = 0;
  decoded = 0;
  exitError: SourceError | null = null;

  constructor(private readonly o: DecoderOptions) {
    this.pool = new FramePool(o.width * o.height * 4, o.policy);
  }

  get dropped(): number {
    return this.pool.dropped;
  }

  start(): void {
    const { width, height } = this.o;
    const args = [
      '-hide_banner',
      '-nostdin',
      '-loglevel',
      'error',
      ...this.o.inputArgs,
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
    const proc = spawn('ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (s: string) => {
      for (const line of s.split('\n').filter(Boolean)) {
        if (/error|corrupt|invalid|concealing|missing/i.test(line)) this.decodeErrors++;
        this.stderrTail.push(line);
        if (this.stderrTail.length > 20) this.stderrTail.shift();
      }
    });
    let buf: Buffer | null = null;
    let filled = 0;
    const stdout = proc.stdout!;
    const onData = (chunk: Buffer): void => {
      let off = 0;
      while (off < chunk.length) {
        if (!buf) {
          buf = this.pool.acquire();
          if (!buf) {
            // every buffer is busy: hold this chunk's rest until the consumer frees one
            stdout.pause();
            const rest = chunk.subarray(off);
            void this.pool.waitForSpace().then(() => {
              onData(rest);
              stdout.resume();
            });
            return;
          }
          filled = 0;
        }
        const n = Math.min(chunk.length - off, buf.length - filled);
        chunk.copy(buf, filled, off, off + n);
        filled += n;
        off += n;
        if (filled === buf.length) {
          const index = this.decoded++;
          const frame: Frame = { data: buf, width, height, ts: this.o.timestamp(index), index, arrivedAt: performance.now() };
          this.pool.push(frame, buf);
          buf = null;
        }
      }
    };
    stdout.on('data', onData);
    proc.on('error', (e) => {
      this.exitError = new SourceError(`${this.o.label}: cannot start ffmpeg (${e.message})`, 'decoder_failed');
      this.pool.end();
    });
    proc.on('close', (code, signal) => {
      if (code !== 0 && signal === null) {
        this.exitError = new SourceError(
          `${this.o.label}: decoder exited with ${code}: ${this.stderrTail.slice(-3).join(' | ')}`,
          'decoder_failed',
        );
      }
      this.pool.end();
    });
  }

  /** Frames in order. A frame's pixels stay valid until the next one is pulled. */
  async *frames(): AsyncGenerator<Frame> {
    if (!this.proc) this.start();
    let held: Buffer | null = null;
    try {
      for (;;) {
        if (held) this.pool.release(held);
        held = null;
        const item = await this.pool.next();
        if (!item) break;
        held = item.buf;
        yield item.frame;
      }
    } finally {
      if (held) this.pool.release(held);
      this.stop();
    }
    if (this.exitError) throw this.exitError;
  }

  stop(): void {
    this.proc?.kill('SIGKILL');
  }
}
