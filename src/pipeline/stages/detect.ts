import { defer, map, type Observable, type OperatorFunction } from 'rxjs';
import type { Frame } from '../../ingest/frame.js';
import type { StreamState } from '../stream-state.js';
import type { Detecting, Found } from './work.js';

/**
 * Starts finding faces and their five points as each frame arrives (on a worker thread
 * where there is one), without waiting for the frame before it to finish its other stages.
 */
export function detect(s: StreamState): OperatorFunction<Frame, Detecting> {
  return map((frame) => {
    const t = performance.now();
    const faces = Promise.resolve()
      .then(() => s.o.faces.detect(frame, frame.ts))
      .then((found) => {
        s.time('landmarks', t);
        return s.select(found, frame.height);
      });
    faces.catch(() => undefined); // awaited, and reported, in its frame's turn
    return { frame, faces };
  });
}

/** The frame's faces once found: where a frame's own stages begin. */
export function found(d: Detecting): Observable<Found> {
  return defer(() => d.faces).pipe(map((faces) => ({ frame: d.frame, faces })));
}
