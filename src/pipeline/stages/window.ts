import { map, type OperatorFunction } from 'rxjs';
import type { StreamState } from '../stream-state.js';
import type { Due, Encoded, Windowed } from './work.js';

/**
 * Each face's embeddings into its track's rolling T-frame window; the windows due for
 * the head (every `stride` frames, once `minFrames` are in). A face unseen for longer
 * than `maxGapMs` starts a fresh window: the model expects evenly spaced frames.
 */
export function window(s: StreamState): OperatorFunction<Encoded, Windowed> {
  const { model } = s.o;
  return map((w) => {
    const due: Due[] = [];
    w.seen.forEach((track, i) => {
      const state = s.states.get(track.id)!;
      if (w.frame.ts - state.window.lastTs > s.o.maxGapMs) {
        state.window.reset();
        state.labeller.reset();
      }
      state.window.push(
        w.emb.app.subarray(i * model.appDim, (i + 1) * model.appDim),
        w.emb.rel.subarray(i * model.relDim, (i + 1) * model.relDim),
        w.frame.ts,
      );
      if (state.window.due(s.o.stride, s.o.minFrames))
        due.push({ track, state, window: { frames: state.window.frames, spanMs: state.window.spanMs } });
    });
    return { ...w, due };
  });
}
