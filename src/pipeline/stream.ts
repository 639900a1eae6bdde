import { catchError, concat, defer, from, Observable, of } from 'rxjs';
import type { Source } from '../ingest/source.js';
import type { Arpgnet } from '../model/arpgnet.js';
import { envelope, errorEvent, streamEnd, streamStart, type Envelope } from '../publish/envelopes.js';
import type { PipelineEvent, StreamStats } from '../publish/events.js';
import type { StreamState } from './stream-state.js';
import type { Frame } from '../ingest/frame.js';
import { analyseFrames } from './analysis.js';

/**
 * Frame copies in shared memory, each lent to one frame until the analysis is done with
 * it. Not a ring: a frame sampled out is done at once while an older one may still be
 * aligned, so reusing buffers in turn would let a later frame overwrite pixels that an
 * earlier frame's face is still being cut from.
 */
export class FrameCopies {
  private readonly free: Uint8Array[] = [];
  private readonly lent = new Set<Uint8Array>();

  /** Buffers made so far (at most one more than the frames ever in flight at once). */
  get allocated(): number {
    return this.free.length + this.lent.size;
  }

  hold(f: Frame): Frame {
    let b = this.free.pop();
    // a stream whose picture size changes gets buffers of the new size
    while (b && b.length !== f.data.length) b = this.free.pop();
    b ??= new Uint8Array(new SharedArrayBuffer(f.data.length));
    b.set(f.data);
    this.lent.add(b);
    return { ...f, data: b };
  }

  /** The frame is through; a second call for the same frame changes nothing. */
  release(f: Frame): void {
    if (this.lent.delete(f.data)) this.free.push(f.data);
  }
}

export interface StreamOptions {
  fps: number;
  /**
   * Detect the next frame while the last one is analysed (worth it when faces are found
   * on a worker thread: then both cores work on one stream).
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
 * The source's frames, read only while fewer than `ahead` are in the analysis: a file is
 * read as fast as it is analysed, a live source drops in its decoder instead. With
 * `ahead` > 1 each frame is copied into shared memory (the decoder reuses its buffer
 * once asked for the next frame, and a worker thread reads the copy without one more).
 */
class FrameReader {
  lastTs = 0;
  private inFlight = 0;
  private wake: (() => void) | null = null;
  private readonly copies: FrameCopies | null;

  constructor(
    private readonly source: Source,
    private readonly ahead: number,
    private readonly onProgress?: (decoded: number) => void,
  ) {
    this.copies = ahead > 1 ? new FrameCopies() : null;
  }

  readonly done = (f: Frame): void => {
    this.copies?.release(f);
    this.inFlight--;
    this.wake?.();
  };

  readonly frames$ = new Observable<Frame>((sub) => {
    let stopped = false;
    const read = async (): Promise<void> => {
      for await (const frame of this.source.frames()) {
        if (stopped) return;
        this.lastTs = frame.ts;
        this.onProgress?.(frame.index + 1);
        this.inFlight++;
        sub.next(this.copies ? this.copies.hold(frame) : frame);
        while (this.inFlight >= this.ahead && !stopped) await new Promise<void>((r) => (this.wake = r));
      }
      finished = true;
      sub.complete();
    };
    let finished = false;
    read().catch((e: unknown) => {
      finished = true;
      sub.error(e);
    });
    return () => {
      stopped = true;
      this.wake?.();
      // an unsubscribe before the end (a viewer left, a stage gave up) stops the decoder
      if (!finished) this.source.stop();
    };
  });
}

/**
 * A source pulled through the analysis (analysis.ts) as a cold Observable of events:
 * stream_start, the analysis events, stream_end with the stream's counts. A source or
 * stage that fails for good becomes a fatal error event before stream_end.
 */
export function analyseStream(source: Source, state: StreamState, model: Arpgnet, o: StreamOptions): Observable<PipelineEvent> {
  return defer(() => {
    const base = (ts: number): Envelope => envelope(source.id, o.room, ts);
    const reader = new FrameReader(source, o.lookahead ? 2 : 1, o.onProgress);
    let reason: 'eof' | 'stopped' | 'error' = 'eof';
    const start = streamStart(
      base(0),
      { kind: source.kind, uri: source.uri, width: source.width, height: source.height, fps: source.info.fps },
      model,
    );
    const events$ = reader.frames$.pipe(
      analyseFrames(state, {
        fps: o.fps,
        maxFailedFrames: o.maxFailedFrames ?? Infinity,
        done: reader.done,
      }),
      catchError((e: Error & { code?: string }) => {
        reason = 'error';
        return of<PipelineEvent>(errorEvent(base(reader.lastTs), e.code ?? 'source_failed', e.message, true));
      }),
    );
    const end = defer(() => {
      if (source.stopped && reason === 'eof') reason = 'stopped';
      const s = source.stats();
      const stats: StreamStats = {
        decoded: s.decoded,
        analysed: state.analysed,
        sampledOut: state.sampledOut,
        dropped: s.dropped,
        decodeErrors: s.decodeErrors + state.failed,
        framesWithoutFace: state.framesWithoutFace,
        emotions: state.emotions,
        facesTooSmall: state.leftOut.tooSmall,
        facesOverLimit: state.leftOut.overLimit,
        actionsFused: state.actionsFusion.fused,
        actionsUnusable: state.actionsFusion.unusable,
      };
      return from<PipelineEvent[]>([...state.finish(reader.lastTs), streamEnd(base(reader.lastTs), reason, stats)]);
    });
    return concat(of(start), events$, end);
  });
}
