import { spawn, type ChildProcess } from 'node:child_process';
import { SourceError } from './ffmpeg.js';
import { FramePool, type QueuePolicy } from './frame-pool.js';
import type { Frame } from './frame.js';

export interface DecoderOptions {
  /** The decoder process: it must write raw RGBA frames of width x height to stdout. */
  command: string;
  args: string[];
  width: number;
  height: number;
  policy: QueuePolicy;
  /** Media time of frame i; files use i / fps, live sources their arrival time. */
  timestamp: (index: number) => number;
  label: string;
}

/**
 * One decoder child process (ffmpeg or GStreamer) writing raw RGBA at the analysis
 * size. stdout chunks are copied once into pooled frame buffers; nothing else copies
 * pixels.
 */
export class RawVideoDecoder {
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
    const proc = spawn(this.o.command, this.o.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (s: string) => {
      for (const line of s.split('\n').filter(Boolean)) {
        if (/error|corrupt|invalid|concealing|missing|warning: /i.test(line)) this.decodeErrors++;
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
      this.exitError = new SourceError(`${this.o.label}: cannot start ${this.o.command} (${e.message})`, 'decoder_failed');
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
