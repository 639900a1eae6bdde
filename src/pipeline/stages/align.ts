import { tap, type MonoTypeOperatorFunction } from 'rxjs';
import type { StreamState } from '../stream-state.js';
import { templateToFrame, warpToTensor } from '../align.js';
import type { Tracked } from './work.js';

/**
 * Each seen face warped straight from the frame onto the model's input (similarity from
 * its five points to the template), into the stream's face batch in `seen` order (with
 * its mirror image beside it, or every other frame instead of it: analysis.mirror).
 */
export function align(s: StreamState): MonoTypeOperatorFunction<Tracked> {
  const { model } = s.o;
  return tap(({ frame, seen }) => {
    const t = performance.now();
    const views = s.views;
    const per = s.faceBatch.length / (s.o.maxFaces * views);
    seen.forEach((tr, i) => {
      const sim = s.o.align ? s.o.align(tr.face, frame) : templateToFrame(tr.face.points, model.preprocess.template);
      if (views === 2) {
        // the face and its mirror side by side, averaged after the encoder (stages/encode.ts)
        warpToTensor(frame, sim, model.preprocess, s.faceBatch, 2 * i * per);
        warpToTensor(frame, sim, model.preprocess, s.faceBatch, (2 * i + 1) * per, true);
        return;
      }
      const st = s.states.get(tr.id)!;
      // every other frame of a track as its mirror image (see mirror in StreamStateOptions)
      const mirror = s.o.mirror === 'alternate' && st.encoded++ % 2 === 1;
      warpToTensor(frame, sim, model.preprocess, s.faceBatch, i * per, mirror);
    });
    if (seen.length) s.time('align', t);
  });
}
