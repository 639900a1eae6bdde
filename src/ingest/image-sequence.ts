import { basename } from 'node:path';
import { decodeImage } from './still-image.js';
import type { Frame } from './frame.js';
import { SourceError, type Source } from './source.js';

/**
 * A folder of frames played as a video at `fps`, decoded in this process. A frame
 * that cannot be decoded is skipped, counted (`decodeErrors`) and reported through
 * `onBadFrame`; its time slot stays empty, as a dropped frame would in a call.
 */
export function imageSequenceSource(
  id: string,
  files: readonly string[],
  fps: number,
  onBadFrame?: (file: string, message: string) => void,
): Source {
  if (!files.length) throw new SourceError(`${id}: no frames (.png, .jpg, .jpeg) in this folder`, 'empty');
  let decoded = 0;
  let decodeErrors = 0;
  let first: Frame | null = null;
  for (const f of files) {
    try {
      const img = decodeImage(f);
      first = { ...img, ts: 0, index: 0, arrivedAt: 0 };
      break;
    } catch {
      // reported when the frame's turn comes
    }
  }
  if (!first) throw new SourceError(`${id}: none of its ${files.length} frames could be decoded`, 'decoder_failed');
  const size = { width: first.width, height: first.height };
  const source: Source = {
    id,
    kind: 'images',
    uri: id,
    info: { ...size, fps, frames: files.length, durationMs: (files.length * 1000) / fps, codec: 'image' },
    ...size,
    stopped: false,
    async *frames(): AsyncGenerator<Frame> {
      for (let i = 0; i < files.length && !source.stopped; i++) {
        let img;
        try {
          img = decodeImage(files[i]!);
        } catch (e) {
          decodeErrors++;
          onBadFrame?.(files[i]!, (e as Error).message);
          continue;
        }
        if (img.width !== size.width || img.height !== size.height) {
          decodeErrors++;
          onBadFrame?.(files[i]!, `${basename(files[i]!)} is ${img.width}x${img.height}, the sequence is ${size.width}x${size.height}`);
          continue;
        }
        decoded++;
        yield { ...img, ts: (i * 1000) / fps, index: i, arrivedAt: performance.now() };
      }
    },
    stats: () => ({ decoded, dropped: 0, decodeErrors }),
    stop: () => {
      source.stopped = true;
    },
  };
  return source;
}
