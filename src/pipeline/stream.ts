import { Observable } from 'rxjs';
import type { Source } from '../ingest/source.js';
import type { Arpgnet } from '../model/arpgnet.js';
import { wallTime, type PipelineEvent, type StreamStats } from '../publish/events.js';
import type { StreamAnalyser } from './analyser.js';
import type { Frame } from '../ingest/frame.js';
import type { DetectedFace } from './landmarker.js';
import { RateSampler } from './sampler.js';

/** A small ring of frame copies in shared memory, reused in turn (at most `size` frames in flight). */
class FrameCopies {
  private readonly bufs: Uint8Array[] = [];
  private k = 0;

  constructor(private readonly size: number) {}

  hold(f: Frame): Frame {
    const i = this.k++ % this.size;
    let b = this.bufs[i];
    if (!b || b.length !== f.data.length) this.bufs[i] = b = new Uint8Array(new SharedArrayBuffer(f.data.length));
    b.set(f.data);
    return { ...f, data: b };
  }
}

export interface StreamOptions {
  fps: number;
  /**
   * Detect the next frame while the last one is analysed (worth it when landmarks run on
   * a worker thread: then both cores work on one stream).
   */
  lookahead?: boolean | undefined;
  room?: string | undefined;
  /**
   * Frames in a row that may fail analysis (landmarker, encoder) before the stream gives
   * up with a fatal error: one bad frame is noise, a stage that keeps failing is broken.
   */
  maxFailedFrames?: number | undefined;
  onProgress?: ((decoded: number) => void) | undefined;
}

/**
 * A source pulled through an analyser as a cold Observable of events: stream_start,
 * the analysis events, stream_end. Frames are pulled one at a time, so a file is read
 * only as fast as it is analysed; live sources drop in their decoder instead. A frame
 * that fails analysis becomes a non-fatal error event and the stream goes on.
 */
export function analyseStream(source: Source, analyser: StreamAnalyser, model: Arpgnet, o: StreamOptions): Observable<PipelineEvent> {
  return new Observable<PipelineEvent>((sub) => {
    let stopped = false;
    const base = (ts: number) => ({
      v: 2 as const,
      stream: source.id,
      ...(o.room ? { room: o.room } : {}),
      ts: Math.max(0, ts),
      wallTime: wallTime(),
    });
    const sampler = new RateSampler(o.fps);
    let sampledOut = 0;
    let lastTs = 0;
    let analysisErrors = 0;
    let failedInRow = 0;
    let lastFailure = '';
    const maxFailed = o.maxFailedFrames ?? Infinity;
    const copies = new FrameCopies(3);
    let chain: Promise<void> = Promise.resolve();
    const inflight: Array<Promise<void>> = [];
    const analyse = async (frame: Frame, faces: Promise<DetectedFace[]>): Promise<void> => {
      try {
        for (const e of await analyser.analyse(frame, await faces)) sub.next(e);
        failedInRow = 0;
      } catch (e) {
        analysisErrors++;
        failedInRow++;
        lastFailure = (e as Error).message;
        sub.next({
          ...base(frame.ts),
          type: 'error',
          code: 'frame_failed',
          message: `frame ${frame.index}: ${(e as Error).message}`,
          fatal: false,
        });
      }
    };
    const giveUpIfBroken = (): void => {
      if (failedInRow < maxFailed) return;
      throw Object.assign(new Error(`${failedInRow} frames in a row failed analysis (last: ${lastFailure}); giving up on this stream`), {
        code: 'analysis_failed',
      });
    };
    const run = async (): Promise<void> => {
      sub.next({
        ...base(0),
        type: 'stream_start',
        source: { kind: source.kind, uri: source.uri, width: source.width, height: source.height, fps: source.info.fps },
        model: { name: model.name, version: model.version, labels: [...model.labels], window: model.window },
      });
      let reason: 'eof' | 'stopped' | 'error' = 'eof';
      try {
        for await (const frame of source.frames()) {
          if (stopped) {
            reason = 'stopped';
            break;
          }
          lastTs = frame.ts;
          o.onProgress?.(frame.index + 1);
          if (!sampler.keep(frame.ts)) {
            sampledOut++;
            continue;
          }
          if (!o.lookahead) {
            await analyse(frame, analyser.detect(frame));
            giveUpIfBroken();
            continue;
          }
          // the decoder reuses its buffer once we ask for the next frame: keep a copy in shared memory
          const copy = copies.hold(frame);
          const faces = analyser.detect(copy);
          faces.catch(() => undefined); // awaited (and reported) in its turn
          // analysed as soon as its faces are in and the frame before it is done, in order;
          // at most two frames in flight, so a file is still read only as fast as it is analysed
          chain = chain.then(() => analyse(copy, faces));
          inflight.push(chain);
          while (inflight.length >= 2) await inflight.shift();
          giveUpIfBroken();
        }
        await chain;
      } catch (e) {
        reason = 'error';
        sub.next({
          ...base(lastTs),
          type: 'error',
          code: (e as { code?: string }).code ?? 'source_failed',
          message: (e as Error).message,
          fatal: true,
        });
      }
      if (source.stopped && reason === 'eof') reason = 'stopped';
      for (const e of analyser.finish(lastTs)) sub.next(e);
      const s = source.stats();
      const stats: StreamStats = {
        decoded: s.decoded,
        analysed: analyser.analysed - analysisErrors,
        sampledOut,
        dropped: s.dropped,
        decodeErrors: s.decodeErrors + analysisErrors,
        framesWithoutFace: analyser.framesWithoutFace,
        emotions: analyser.emotions,
      };
      sub.next({ ...base(lastTs), type: 'stream_end', reason, stats });
      sub.complete();
    };
    run().catch((e: unknown) => sub.error(e));
    return () => {
      stopped = true;
      source.stop();
    };
  });
}
