import { catchError, concat, concatMap, finalize, of, pipe, tap, throwError, type Observable, type OperatorFunction } from 'rxjs';
import type { Frame } from '../ingest/frame.js';
import { errorEvent } from '../publish/envelopes.js';
import type { PipelineEvent } from '../publish/events.js';
import type { StreamState } from './stream-state.js';
import { align } from './stages/align.js';
import { classify } from './stages/classify.js';
import { fuse } from './stages/fuse.js';
import { detect, found } from './stages/detect.js';
import type { Found } from './stages/work.js';
import { encode } from './stages/encode.js';
import { label } from './stages/label.js';
import { sample } from './stages/sample.js';
import { toEvents } from './stages/to-events.js';
import { track } from './stages/track.js';
import { window } from './stages/window.js';

export interface AnalysisOptions {
  fps: number;
  /** Told when a frame is through (analysed, failed or sampled out): the source may read another. */
  done: (f: Frame) => void;
  /** Frames in a row that may fail before the stream ends with a fatal `analysis_failed`. */
  maxFailedFrames: number;
}

/**
 * Where a frame becomes an event, for a file, a camera and a call alike: decoded frames
 * in, the stream's analysis events out, in frame order.
 *
 *   sample -> detect -> track -> align -> encode -> window -> classify -> fuse -> label -> events
 *
 * Detection starts as a frame arrives (on a worker thread), so a frame's faces are
 * being found while the frame before it is encoded; everything after runs one frame at
 * a time. A frame that fails becomes a non-fatal error event and the stream goes on;
 * a stage that keeps failing ends it.
 */
export function analyseFrames(s: StreamState, o: AnalysisOptions): OperatorFunction<Frame, PipelineEvent> {
  let failedInRow = 0;
  const failed = (frame: Frame, e: Error): Observable<PipelineEvent> => {
    s.failed++;
    failedInRow++;
    const event = of<PipelineEvent>(errorEvent(s.base(frame.ts), 'frame_failed', `frame ${frame.index}: ${e.message}`, false));
    if (failedInRow < o.maxFailedFrames) return event;
    const fatal = new Error(`${failedInRow} frames in a row failed analysis (last: ${e.message}); giving up on this stream`);
    return concat<PipelineEvent[]>(
      event,
      throwError((): Error => Object.assign(fatal, { code: 'analysis_failed' })),
    );
  };
  return (frames$) =>
    frames$.pipe(
      sample(o.fps, (f) => {
        s.sampledOut++;
        o.done(f);
      }),
      detect(s),
      concatMap((d) =>
        found(d).pipe(
          ownStages(s),
          tap({
            complete: () => {
              s.analysed++;
              failedInRow = 0;
            },
          }),
          catchError((e: Error) => failed(d.frame, e)),
          finalize(() => o.done(d.frame)),
        ),
      ),
    );
}

/** A frame's own stages, once its faces are found: one frame at a time, in order. */
function ownStages(s: StreamState): OperatorFunction<Found, PipelineEvent> {
  return pipe(track(s), align(s), encode(s), window(s), classify(s), fuse(s), label(s), toEvents(s));
}
