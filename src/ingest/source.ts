import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { analysisSize, ffmpegDecodeArgs, probe, SourceError, type VideoInfo } from './ffmpeg.js';
import { gstDecodeArgs } from './gstreamer.js';
import { RawVideoDecoder } from './raw-decoder.js';
import type { Frame } from './frame.js';

export { SourceError };

export type SourceKind = 'file' | 'images' | 'camera' | 'webrtc';

export interface SourceOptions {
  /** Longest side of the decoded frames; larger videos are scaled down by the decoder. */
  maxSide: number;
  /** Frame rate given to image-sequence folders. */
  sequenceFps: number;
  /** Read a file at its own pace and drop frames a slow analysis cannot take, as live sources do. */
  realtime: boolean;
  /** Which program decodes files and cameras (image folders always use ffmpeg). */
  decoder?: 'ffmpeg' | 'gstreamer' | undefined;
  /** GStreamer only: the part of the pipeline up to decoded video, with {input} (see gstreamer.ts). */
  gstPipeline?: string | undefined;
}

export interface Source {
  readonly id: string;
  readonly kind: SourceKind;
  readonly uri: string;
  readonly info: VideoInfo;
  readonly width: number;
  readonly height: number;
  frames(): AsyncGenerator<Frame>;
  stats(): { decoded: number; dropped: number; decodeErrors: number };
  /** Ends the stream early (the decoder is killed); `stopped` then reads true. */
  stop(): void;
  stopped: boolean;
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.bmp']);

function concatList(dir: string, fps: number): { list: string; cleanup: () => void; count: number } {
  const files = readdirSync(dir)
    .filter((f) => IMAGE_EXT.has(extname(f).toLowerCase()))
    .sort();
  if (!files.length) throw new SourceError(`${dir}: no images (.png, .jpg, .jpeg, .bmp) in this folder`, 'empty');
  const tmp = mkdtempSync(join(tmpdir(), 'arpgnet-seq-'));
  const list = join(tmp, 'list.ffconcat');
  const esc = (p: string): string => p.replace(/'/g, "'\\''");
  const body = files.map((f) => `file '${esc(resolve(dir, f))}'\nduration ${(1 / fps).toFixed(6)}`).join('\n');
  // the concat demuxer ignores the last entry's duration unless the file is named again
  writeFileSync(list, `ffconcat version 1.0\n${body}\nfile '${esc(resolve(dir, files[files.length - 1]!))}'\n`);
  return { list, count: files.length, cleanup: () => rmSync(tmp, { recursive: true, force: true }) };
}

export async function openSource(input: string, o: SourceOptions, id = input): Promise<Source> {
  const csi = input.startsWith('csi://');
  if (csi && o.decoder !== 'gstreamer') throw new SourceError(`${input}: CSI cameras need the gstreamer decoder`, 'unsupported');
  const camera = csi || input.startsWith('/dev/video');
  let stat;
  try {
    stat = csi ? null : statSync(input);
  } catch {
    throw new SourceError(`${input}: no such ${camera ? 'camera device' : 'file or folder'}`, 'not_found');
  }
  let kind: SourceKind;
  let inputArgs: string[];
  let cleanup = (): void => {};
  let frameLimit: number | null = null;
  if (camera) {
    kind = 'camera';
    inputArgs = ['-f', 'v4l2', '-framerate', '30', '-i', input];
  } else if (stat?.isDirectory()) {
    kind = 'images';
    const c = concatList(input, o.sequenceFps);
    cleanup = c.cleanup;
    frameLimit = c.count;
    inputArgs = ['-f', 'concat', '-safe', '0', '-i', c.list];
  } else {
    kind = 'file';
    if (stat?.size === 0) throw new SourceError(`${input}: empty file`, 'empty');
    inputArgs = [...(o.realtime ? ['-re'] : []), '-i', input];
  }
  let info: VideoInfo;
  try {
    // a CSI sensor has no ffprobe view: it runs at the mode nvarguscamerasrc negotiates
    info = csi
      ? { width: 1280, height: 720, fps: 30, frames: null, durationMs: null, codec: 'csi' }
      : await probe(
          inputArgs.filter((a) => a !== '-re'),
          input,
        );
  } catch (e) {
    cleanup();
    throw e;
  }
  if (kind === 'images') info = { ...info, fps: o.sequenceFps, frames: frameLimit, durationMs: ((frameLimit ?? 0) * 1000) / o.sequenceFps };
  const { width, height } = analysisSize(info.width, info.height, o.maxSide);
  const live = kind === 'camera' || o.realtime;
  const t0 = performance.now();
  const gst = o.decoder === 'gstreamer' && kind !== 'images';
  const decoder = new RawVideoDecoder({
    command: gst ? 'gst-launch-1.0' : 'ffmpeg',
    args: gst
      ? gstDecodeArgs(input, kind === 'camera' ? 'camera' : 'file', width, height, { pipeline: o.gstPipeline, realtime: o.realtime })
      : ffmpegDecodeArgs(frameLimit ? [...inputArgs, '-frames:v', String(frameLimit)] : inputArgs, width, height),
    width,
    height,
    policy: live ? 'drop-oldest' : 'block',
    timestamp: kind === 'camera' ? () => performance.now() - t0 : (i: number) => (i * 1000) / info.fps,
    label: input,
  });
  const source: Source = {
    id,
    kind,
    uri: input,
    info,
    width,
    height,
    async *frames() {
      try {
        yield* decoder.frames();
      } finally {
        cleanup();
      }
    },
    stats: () => ({ decoded: decoder.decoded, dropped: decoder.dropped, decodeErrors: decoder.decodeErrors }),
    stopped: false,
    stop() {
      source.stopped = true;
      decoder.stop();
    },
  };
  return source;
}
